"""What the HTTP printer clients (OctoPrint, PrusaLink) share: the unreachable-server error and error text."""

from __future__ import annotations

import json

import httpx

from fabctl.errors import TransportError


class Unreachable(TransportError):
    """The server did not answer at all (refused, reset, timed out): the server, not the request, failed."""


def error_text(resp: httpx.Response) -> str:
    """The server's own words for a failed request: OctoPrint's ``error`` or PrusaLink's ``text``/``title``."""
    try:
        doc = resp.json()
    except ValueError:
        return resp.text.strip()[:200]
    if isinstance(doc, dict):
        for key in ("error", "text", "title", "message"):
            if isinstance(doc.get(key), str) and doc[key]:
                return doc[key][:200]
    return json.dumps(doc)[:200]
