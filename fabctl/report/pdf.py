"""The device history record as a PDF (reportlab, BSD): A4, one table per §2 section, pictures, the audit log.

Every page carries the case, the page number, the trace head hash and, unless the guide is released, a
DRAFT / NOT RELEASED banner and watermark. Fonts are the Bitstream Vera faces shipped with reportlab, so the
output does not depend on the machine's fonts.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from fabctl.report.dhr import DeviceHistoryRecord, record_sha256

_FONTS = Path(reportlab.__file__).parent / "fonts"
RED = colors.HexColor("#b00020")
GREEN = colors.HexColor("#1b5e20")
GREY = colors.HexColor("#666666")


def _register_fonts() -> None:
    if "Vera" in pdfmetrics.getRegisteredFontNames():
        return
    for name, file in (("Vera", "Vera.ttf"), ("Vera-Bold", "VeraBd.ttf"), ("Vera-Italic", "VeraIt.ttf")):
        pdfmetrics.registerFont(TTFont(name, str(_FONTS / file)))


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName="Vera", fontSize=8, leading=10)
    return {
        "base": base,
        "na": ParagraphStyle("na", parent=base, fontName="Vera-Italic", textColor=GREY),
        "h1": ParagraphStyle("h1", parent=base, fontName="Vera-Bold", fontSize=16, leading=20),
        "h2": ParagraphStyle("h2", parent=base, fontName="Vera-Bold", fontSize=11, leading=14, spaceBefore=8,
                             spaceAfter=3, keepWithNext=1),
        "banner": ParagraphStyle("banner", parent=base, fontName="Vera-Bold", fontSize=18, leading=24,
                                 alignment=TA_CENTER, textColor=colors.white),
        "missing": ParagraphStyle("missing", parent=base, fontName="Vera-Bold", textColor=RED),
        "small": ParagraphStyle("small", parent=base, fontSize=6.5, leading=8),
    }


def _p(text: object, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _grid(rows: list[list], widths: list[float], header: bool = True) -> Table:
    t = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    cmds = [("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#999999")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)]
    if header:
        cmds.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e0e0e0")))
    t.setStyle(TableStyle(cmds))
    return t


def _banner(rec: DeviceHistoryRecord, st: dict) -> Table:
    t = Table([[_p(rec.status, st["banner"])]], colWidths=[180 * mm])
    t.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), GREEN if rec.released else RED),
                           ("TOPPADDING", (0, 0), (-1, -1), 4), ("BOTTOMPADDING", (0, 0), (-1, -1), 6)]))
    return t


def _summary(rec: DeviceHistoryRecord, st: dict) -> Table:
    b = st["base"]
    lab = rec.label
    rows = [
        ["Case", lab.case_id, "Device serial", lab.serial or "none (not printed)"],
        ["Target", f"{lab.level or '?'} {lab.side or '?'}", "Sterile status", lab.sterile_status],
        ["Generated (UTC)", rec.generated_utc, "fabctl", rec.fabctl_version],
        ["Trace", "verifies" if rec.trace_ok else "DOES NOT VERIFY", "Head event", str(rec.head_case_seq)],
        ["Head hash", rec.head_hash, "", ""],
        ["Record sha256", record_sha256(rec), "", ""],
    ]
    data = [[_p(a, b), _p(c, b), _p(d, b), _p(e, b)] for a, c, d, e in rows]
    t = _grid(data, [28 * mm, 72 * mm, 28 * mm, 52 * mm], header=False)
    t.setStyle(TableStyle([("SPAN", (1, 4), (3, 4)), ("SPAN", (1, 5), (3, 5)),
                           ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f0f0f0")),
                           ("BACKGROUND", (2, 0), (2, 3), colors.HexColor("#f0f0f0"))]))
    return t


def _sections(rec: DeviceHistoryRecord, st: dict) -> list:
    out: list = []
    for s in rec.sections:
        rows = [[_p("#", st["base"]), _p("Field", st["base"]), _p("Value, or n/a and why", st["base"]),
                 _p("Events", st["base"])]]
        for f in s.fields:
            val = _p(f.value, st["base"]) if f.value is not None else _p(f"n/a: {f.na_reason}", st["na"])
            rows.append([_p(f.id, st["base"]), _p(f.label, st["base"]), val,
                         _p(", ".join(str(x) for x in f.source), st["base"])])
        out += [_p(f"{s.id}. {s.title}", st["h2"]), _grid(rows, [10 * mm, 42 * mm, 113 * mm, 15 * mm])]
    return out


def _checks(rec: DeviceHistoryRecord, st: dict) -> list:
    if not rec.checks:
        return [_p("Validation checks", st["h2"]), _p("n/a: the design was not validated", st["na"])]
    rows = [[_p(h, st["base"]) for h in ("check", "result", "severity", "value", "limit")]]
    for c in rec.checks:
        rows.append([_p(c.name, st["base"]), _p("pass" if c.passed else "FAIL",
                                                st["base"] if c.passed else st["missing"]),
                     _p(c.severity, st["base"]), _p(c.value, st["base"]), _p(c.limit, st["base"])])
    return [_p("Validation checks (B6)", st["h2"]),
            _grid(rows, [50 * mm, 18 * mm, 20 * mm, 46 * mm, 46 * mm])]


def _pictures(rec: DeviceHistoryRecord, st: dict) -> list:
    out: list = [PageBreak(), _p("Pictures", st["h2"])]
    for pic in rec.pictures:
        block: list = [_p(pic.title, st["h2"])]
        if pic.path:
            img = Image(pic.path)
            scale = min(175 * mm / img.imageWidth, 95 * mm / img.imageHeight)
            img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
            block += [img, _p(f"{Path(pic.path).name}  sha256 {pic.sha256}", st["small"])]
        else:
            block.append(_p(pic.missing, st["missing"]))
        out.append(KeepTogether(block))
    return out


def _signatures(rec: DeviceHistoryRecord, st: dict) -> list:
    out: list = [_p("Signatures (who, when, meaning, the hash signed)", st["h2"])]
    if not rec.signatures:
        return out + [_p("none: nothing in this record has been signed", st["missing"])]
    heads = ("signed", "user (role)", "at (UTC)", "meaning", "signed sha256", "event")
    rows = [[_p(h, st["base"]) for h in heads]]
    for g in rec.signatures:
        rows.append([_p(g.what, st["base"]), _p(g.who, st["base"]),
                     _p(g.signed_utc, st["base"]), _p(g.meaning, st["base"]),
                     _p(g.signed_sha256, st["small"]), _p(g.case_seq, st["base"])])
    return out + [_grid(rows, [36 * mm, 22 * mm, 30 * mm, 16 * mm, 64 * mm, 12 * mm])]


def _events(rec: DeviceHistoryRecord, st: dict) -> list:
    rows = [[_p(h, st["base"]) for h in ("#", "at (UTC)", "actor", "type", "hash")]]
    for e in rec.events:
        rows.append([_p(e.case_seq, st["base"]), _p(e.at_utc[:19].replace("T", " "), st["base"]),
                     _p(e.actor, st["base"]), _p(e.type, st["base"]), _p(e.hash, st["small"])])
    out = [_p("Audit log (L1): every event of the case's trace", st["h2"]),
           _grid(rows, [8 * mm, 36 * mm, 20 * mm, 40 * mm, 76 * mm])]
    if rec.trace_problems:
        out += [_p("Trace problems", st["h2"])] + [_p(p, st["missing"]) for p in rec.trace_problems]
    return out


def _decorate(rec: DeviceHistoryRecord):
    def draw(canvas, doc) -> None:
        canvas.saveState()
        w, h = A4
        if not rec.released:
            canvas.setFillColor(colors.Color(0.7, 0, 0.1, alpha=0.10))
            canvas.setFont("Vera-Bold", 72)
            canvas.translate(w / 2, h / 2)
            canvas.rotate(45)
            canvas.drawCentredString(0, 0, "DRAFT")
            canvas.rotate(-45)
            canvas.translate(-w / 2, -h / 2)
            canvas.setFillColor(RED)
            canvas.setFont("Vera-Bold", 9)
            canvas.drawString(15 * mm, h - 10 * mm, "DRAFT / NOT RELEASED: not for clinical use")
        canvas.setFillColor(colors.black)
        canvas.setFont("Vera", 7)
        canvas.drawString(15 * mm, 8 * mm, f"Device history record {rec.case_id}  |  trace head "
                          f"{rec.head_hash[:16]}  |  generated {rec.generated_utc}")
        canvas.drawRightString(w - 15 * mm, 8 * mm, f"page {doc.page}")
        canvas.restoreState()
    return draw


def write_pdf(rec: DeviceHistoryRecord, path: Path) -> Path:
    """Write the record to ``path`` (A4 PDF)."""
    _register_fonts()
    st = _styles()
    doc = SimpleDocTemplate(str(path), pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=15 * mm,
                            title=f"Device history record {rec.case_id}", author="fabctl",
                            subject=rec.status)
    story: list = [_p(f"Device history record: {rec.case_id}", st["h1"]), Spacer(1, 3 * mm),
                   _banner(rec, st), Spacer(1, 3 * mm), _summary(rec, st)]
    story += _sections(rec, st)
    story += _checks(rec, st)
    story += _signatures(rec, st)
    story += _pictures(rec, st)
    story += _events(rec, st)
    deco = _decorate(rec)
    doc.build(story, onFirstPage=deco, onLaterPages=deco)
    return path
