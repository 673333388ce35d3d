"""The free-text guard: a note or reference that looks like it names or dates a person is refused (exit 2).

Records hold pseudonymous ids only (DESIGN.md §6, clinical-traceability.md §0 finding 10). The few free-text
fields (support-removal note, NCR reference, sterilizer and cure-unit ids) pass through ``check_text`` first.
It refuses what looks like a date (a birth date in common formats), a person-name pattern (two or more
capitalised words in a row, or a title such as "Mr X" / "Dr X"), an e-mail address, a phone number or a
national-id-like run of digits. The error names the field and the kind of pattern, never the text itself,
so the refusal event can be recorded without copying what was refused.
"""

from __future__ import annotations

import re

from fabctl.errors import InputError

MAX_TEXT = 200
_MONTHS = (r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?")

PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("an e-mail address", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("a date", re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b")),
    ("a date", re.compile(r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b")),
    ("a date", re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\s+\d{{2,4}}\b", re.IGNORECASE)),
    ("a date", re.compile(rf"\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{2,4}}\b", re.IGNORECASE)),
    ("a date", re.compile(r"\b(?:dob|d\.o\.b|born|birth)\b", re.IGNORECASE)),
    ("a person's title and name", re.compile(r"\b(?:mr|mrs|ms|miss|mx|dr|prof|sir)\.?\s+[A-Z]", re.IGNORECASE)),
    ("a person-name pattern (capitalised words)", re.compile(r"\b[A-Z][a-z]+(?:[\s,]+[A-Z][a-z]+)+\b")),
    ("a phone number", re.compile(r"(?:\+|\b00)\d[\d\s().-]{6,}\d|\(\d{2,5}\)\s*\d[\d\s-]{4,}\d")),
    ("a phone number", re.compile(r"\b\d{3,4}[\s.-]\d{3,4}[\s.-]\d{3,4}\b")),
    ("a national-id-like number", re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\d{9,}")),
]
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")


def problems(text: str, allow_dates: bool = False) -> list[str]:
    """The kinds of identifying pattern found in ``text`` (empty when it is clean)."""
    found: list[str] = []
    for kind, rx in PATTERNS:
        if allow_dates and kind == "a date":
            continue
        if rx.search(text) and kind not in found:
            found.append(kind)
    return found


def check_text(field: str, text: str | None, allow_dates: bool = False) -> str | None:
    """``text`` when it may be recorded; ``InputError`` (exit 2) naming the field and the pattern otherwise."""
    if text is None:
        return None
    if not text.strip() or len(text) > MAX_TEXT or any(c in text for c in "\r\n\t\x00"):
        raise InputError(f"{field}: free text must be one line of 1-{MAX_TEXT} characters (got {len(text)})",
                         hint="keep notes short and factual, e.g. 'flush cut; intaglio untouched'")
    found = problems(text, allow_dates)
    if found:
        raise InputError(
            f"{field}: refused, the text looks like {' and '.join(found)}; records hold no names, "
            "birth dates or personal identifiers",
            hint="use pseudonymous ids and plain lowercase notes (e.g. 'flush cut; intaglio untouched', "
                 "'NCR-2026-014')",
        )
    return text


def check_id(field: str, value: str, allow_dates: bool = False) -> str:
    """An equipment or document id (sterilizer, cure unit, NCR, load): no spaces, then the free-text guard.
    ``allow_dates`` for lot-control numbers that carry their own date (``SPD-A3-2026-11-26-004``)."""
    if not _ID_RE.fullmatch(value):
        raise InputError(f"{field}: not an id ([A-Za-z0-9][A-Za-z0-9._/-], 1-64 characters, no spaces)",
                         hint="use the equipment's asset id or the document reference, e.g. AUTOCLAVE-A3")
    check_text(field, value, allow_dates)
    return value
