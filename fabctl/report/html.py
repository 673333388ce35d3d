"""The device history record as one self-contained HTML file (pictures inlined): the PDF's content."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from fabctl.report.dhr import DeviceHistoryRecord, record_sha256

CSS = """
body{font-family:"DejaVu Sans",Verdana,sans-serif;font-size:13px;margin:2em;max-width:60em}
table{border-collapse:collapse;width:100%;margin-bottom:1em}
td,th{border:1px solid #999;padding:2px 5px;vertical-align:top;text-align:left;overflow-wrap:anywhere}
th{background:#e0e0e0} .na{color:#666;font-style:italic} .fail,.missing{color:#b00020;font-weight:bold}
.banner{color:#fff;font-size:1.6em;font-weight:bold;text-align:center;padding:.3em}
.draft{background:#b00020} .released{background:#1b5e20} img{max-width:100%;border:1px solid #ccc}
.hash{font-family:monospace;font-size:11px}
"""


def _e(v: object) -> str:
    return escape(str(v))


def _summary(rec: DeviceHistoryRecord) -> str:
    lab = rec.label
    rows = [("Case", lab.case_id), ("Device serial", lab.serial or "none (not printed)"),
            ("Target", f"{lab.level or '?'} {lab.side or '?'}"), ("Sterile status", lab.sterile_status),
            ("Generated (UTC)", rec.generated_utc), ("fabctl", rec.fabctl_version),
            ("Trace", "verifies" if rec.trace_ok else "DOES NOT VERIFY"), ("Head event", rec.head_case_seq),
            ("Head hash", rec.head_hash), ("Record sha256", record_sha256(rec))]
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _sections(rec: DeviceHistoryRecord) -> str:
    out = []
    for s in rec.sections:
        out.append(f"<h2>{_e(s.id)}. {_e(s.title)}</h2><table><tr><th>#</th><th>Field</th>"
                   "<th>Value, or n/a and why</th><th>Events</th></tr>")
        for f in s.fields:
            val = _e(f.value) if f.value is not None else f'<span class="na">n/a: {_e(f.na_reason)}</span>'
            out.append(f'<tr id="{_e(f.key)}"><td>{_e(f.id)}</td><td>{_e(f.label)}</td><td>{val}</td>'
                       f"<td>{_e(', '.join(str(x) for x in f.source))}</td></tr>")
        out.append("</table>")
    return "".join(out)


def _checks(rec: DeviceHistoryRecord) -> str:
    if not rec.checks:
        return '<h2>Validation checks</h2><p class="na">n/a: the design was not validated</p>'
    rows = "".join(f"<tr><td>{_e(c.name)}</td><td{'' if c.passed else ' class=fail'}>"
                   f"{'pass' if c.passed else 'FAIL'}</td><td>{_e(c.severity)}</td><td>{_e(c.value)}</td>"
                   f"<td>{_e(c.limit)}</td></tr>" for c in rec.checks)
    return ("<h2>Validation checks (B6)</h2><table><tr><th>check</th><th>result</th><th>severity</th>"
            f"<th>value</th><th>limit</th></tr>{rows}</table>")


def _pictures(rec: DeviceHistoryRecord) -> str:
    out = ["<h2>Pictures</h2>"]
    for p in rec.pictures:
        out.append(f"<h3>{_e(p.title)}</h3>")
        if p.path:
            data = base64.b64encode(Path(p.path).read_bytes()).decode()
            out.append(f'<img alt="{_e(p.title)}" src="data:image/png;base64,{data}">'
                       f'<p class="hash">{_e(Path(p.path).name)} sha256 {_e(p.sha256)}</p>')
        else:
            out.append(f'<p class="missing">{_e(p.missing)}</p>')
    return "".join(out)


def _signatures(rec: DeviceHistoryRecord) -> str:
    head = "<h2>Signatures (who, when, meaning, the hash signed)</h2>"
    if not rec.signatures:
        return head + '<p class="missing">none: nothing in this record has been signed</p>'
    rows = "".join(f"<tr><td>{_e(g.what)}</td><td>{_e(g.who)}</td>"
                   f"<td>{_e(g.signed_utc)}</td><td>{_e(g.meaning)}</td>"
                   f'<td class="hash">{_e(g.signed_sha256)}</td><td>{g.case_seq}</td></tr>'
                   for g in rec.signatures)
    return (head + "<table><tr><th>signed</th><th>user (role)</th><th>at (UTC)</th><th>meaning</th>"
            f"<th>signed sha256</th><th>event</th></tr>{rows}</table>")


def _events(rec: DeviceHistoryRecord) -> str:
    rows = "".join(f"<tr><td>{e.case_seq}</td><td>{_e(e.at_utc)}</td><td>{_e(e.actor)}</td><td>{_e(e.type)}"
                   f'</td><td class="hash">{_e(e.hash)}</td></tr>' for e in rec.events)
    probs = "".join(f'<p class="missing">{_e(p)}</p>' for p in rec.trace_problems)
    return ("<h2>Audit log (L1): every event of the case's trace</h2><table><tr><th>#</th><th>at (UTC)</th>"
            f"<th>actor</th><th>type</th><th>hash</th></tr>{rows}</table>"
            + (f"<h2>Trace problems</h2>{probs}" if probs else ""))


def write_html(rec: DeviceHistoryRecord, path: Path) -> Path:
    cls = "released" if rec.released else "draft"
    doc = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
           f"<title>Device history record {_e(rec.case_id)}: {_e(rec.status)}</title><style>{CSS}</style>"
           f"</head><body><h1>Device history record: {_e(rec.case_id)}</h1>"
           f'<div class="banner {cls}">{_e(rec.status)}</div>'
           + _summary(rec) + _sections(rec) + _checks(rec) + _signatures(rec) + _pictures(rec) + _events(rec)
           + "</body></html>\n")
    Path(path).write_text(doc, encoding="utf-8")
    return Path(path)
