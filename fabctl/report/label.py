"""The printable label (PNG, 300 dpi, 76 x 42 mm): case, serial, level and side, single use, sterile status,
use-by, and a QR code of the serial.

QR (ISO/IEC 18004) from ``segno`` (BSD, pure Python): any phone or 2D scanner reads it; a Data Matrix would
need libdmtx (native) or an unmaintained port. The code is drawn module by module from segno's matrix, so
``qr_geometry`` tells a reader exactly where each module is (the tests read it back from the pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFont

from fabctl.report.dhr import LabelInfo

WIDTH_PX, HEIGHT_PX = 900, 500  # 76 x 42 mm at 300 dpi
QR_BORDER = 4  # modules of quiet zone (ISO/IEC 18004)
QR_BOX_PX = 340
_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu")


@dataclass(frozen=True)
class QrGeometry:
    """Where the QR symbol is on the label: top-left of module (0, 0) in pixels, module size, modules."""

    x0: int
    y0: int
    module_px: int
    modules: np.ndarray  # (n, n) bool, True = dark


def qr_modules(serial: str) -> np.ndarray:
    """The QR symbol of ``serial`` as an (n, n) bool array (error correction M or better, no quiet zone)."""
    qr = segno.make(serial, error="m", micro=False)  # segno raises the level when the version has room
    return np.array([[bool(v) for v in row] for row in qr.matrix], dtype=bool)


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for d in _FONT_DIRS:
        p = Path(d) / name
        if p.is_file():
            return ImageFont.truetype(str(p), size)
    import reportlab  # ships the Bitstream Vera faces, DejaVu's ancestor

    return ImageFont.truetype(str(Path(reportlab.__file__).parent / "fonts" / ("VeraBd.ttf" if bold else
                                                                               "Vera.ttf")), size)


def qr_geometry(serial: str) -> QrGeometry:
    mods = qr_modules(serial)
    n = mods.shape[0]
    module_px = QR_BOX_PX // (n + 2 * QR_BORDER)
    x0 = WIDTH_PX - 20 - (n + 2 * QR_BORDER) * module_px + QR_BORDER * module_px
    y0 = 40 + QR_BORDER * module_px
    return QrGeometry(x0, y0, module_px, mods)


def write_label(info: LabelInfo, path: Path) -> Path:
    """Draw the label of ``info`` into ``path`` (PNG, 1-bit-clean black on white, 300 dpi)."""
    img = Image.new("RGB", (WIDTH_PX, HEIGHT_PX), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([2, 2, WIDTH_PX - 3, HEIGHT_PX - 3], outline="black", width=3)
    big, mid, small = _font(40, True), _font(28, True), _font(24)
    y = 24
    d.text((24, y), info.serial or "NO SERIAL", font=big, fill="black")
    y += 54
    d.text((24, y), f"case {info.case_id}", font=mid, fill="black")
    y += 40
    d.text((24, y), f"{info.level or '?'}  {info.side or '?'}  PVP guide", font=mid, fill="black")
    y += 48
    _single_use_symbol(d, 24, y - 2, 38)
    d.text((74, y), "SINGLE USE", font=mid, fill="black")
    y += 44
    for line in _wrap(info.sterile_status, 30):
        d.text((24, y), line, font=small, fill="black")
        y += 30
    for line in _wrap(f"use by: {info.use_by}", 30):
        d.text((24, y), line, font=small, fill="black")
        y += 30
    if info.serial:
        g = qr_geometry(info.serial)
        px = np.repeat(np.repeat(~g.modules, g.module_px, 0), g.module_px, 1).astype(np.uint8) * 255
        img.paste(Image.fromarray(px, "L").convert("RGB"), (g.x0, g.y0))
        d.text((g.x0, g.y0 + g.modules.shape[0] * g.module_px + 12), "serial", font=small, fill="black")
    else:
        d.text((WIDTH_PX - 330, 160), "no serial: not printed", font=small, fill="black")
    if not info.released:
        d.rectangle([0, HEIGHT_PX - 64, WIDTH_PX, HEIGHT_PX], fill=(176, 0, 32))
        d.text((24, HEIGHT_PX - 56), "DRAFT / NOT RELEASED", font=big, fill="white")
    img.save(path, format="PNG", dpi=(300, 300))
    return Path(path)


def _single_use_symbol(d: ImageDraw.ImageDraw, x: int, y: int, size: int) -> None:
    """ISO 7000-1051 "do not re-use": a 2 in a circle, struck through."""
    d.ellipse([x, y, x + size, y + size], outline="black", width=3)
    d.text((x + size // 2, y + size // 2), "2", font=_font(int(size * 0.7), True), fill="black", anchor="mm")
    d.line([x + size * 0.15, y + size * 0.85, x + size * 0.85, y + size * 0.15], fill="black", width=3)


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return lines + ([cur] if cur else [])
