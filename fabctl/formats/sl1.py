"""The SL1 archive (Prusa SL1/SL1S, read by PrusaLink and UVtools): writer and reader.

Layout, as PrusaSlicer 2.5 writes it (sla-prep.md §4):

* a ZIP, every entry deflated; entries in order ``config.ini``, ``prusaslicer.ini``, the layers, then
  thumbnails;
* layers ``{jobDir}{index:05d}.png`` from ``00000``, bottom first, no folder; ``jobDir`` is the output file
  name without its extension; 8-bit greyscale PNG of the screen's full resolution;
* ``config.ini``: flat ``key = value`` lines, the 19 job keys below; ``prusaslicer.ini``: the resolved
  settings (the keys that describe this job; PrusaSlicer reads them back on import);
* ``thumbnail/thumbnail{W}x{H}.png``: RGBA previews (the stock SL1S profile asks for 400x400 and 800x480).

config.ini keys: ``action`` (print), ``expTime`` / ``expTimeFirst`` (s), ``expUserProfile`` (0 fast, 1 slow,
2 high viscosity), ``fileCreationTimestamp`` (``YYYY-MM-DD at HH:MM:SS UTC``), ``hollow`` (0/1), ``jobDir``,
``layerHeight`` (mm), ``materialName``, ``numFade`` (faded layers), ``numFast`` / ``numSlow`` (layers by tilt
speed), ``printProfile``, ``printTime`` (estimated s), ``printerModel``, ``printerProfile``,
``printerVariant``, ``prusaSlicerVersion`` (the writing software), ``usedMaterial`` (ml).

Layers are rendered, PNG-encoded and deflated for the ZIP in worker processes (``fork``; the render
callable is inherited, not pickled) and streamed in order into the archive by a small ZIP writer of its own
(``zipfile`` cannot take entries deflated elsewhere, and would deflate each layer again in this process).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import signal
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fabctl.errors import InputError
from fabctl.formats import png

#: what a render callable returns for layer ``i``: (row0, col0, (h, w) uint8 tile) in a black frame
Render = Callable[[int], tuple[int, int, np.ndarray]]

CONFIG_KEYS = (
    "action", "expTime", "expTimeFirst", "expUserProfile", "fileCreationTimestamp", "hollow", "jobDir",
    "layerHeight", "materialName", "numFade", "numFast", "numSlow", "printProfile", "printTime",
    "printerModel", "printerProfile", "printerVariant", "prusaSlicerVersion", "usedMaterial",
)
_JOBDIR_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True, slots=True)
class Sl1Job:
    """Everything ``config.ini`` and ``prusaslicer.ini`` say about a job (no patient data: ids only)."""

    job_dir: str
    width_px: int
    height_px: int
    exposure_s: float
    first_exposure_s: float
    faded_layers: int
    layer_height_mm: float
    num_fast: int
    num_slow: int
    print_time_s: float
    used_material_ml: float
    material_name: str
    printer_model: str
    printer_profile: str
    print_profile: str
    software: str
    printer_variant: str = "default"
    exp_user_profile: int = 0
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    settings: dict[str, str] = field(default_factory=dict)

    def config_ini(self) -> str:
        ts = self.created.astimezone(UTC).strftime("%Y-%m-%d at %H:%M:%S UTC")
        values = {
            "action": "print", "expTime": _num(self.exposure_s), "expTimeFirst": _num(self.first_exposure_s),
            "expUserProfile": str(self.exp_user_profile), "fileCreationTimestamp": ts, "hollow": "0",
            "jobDir": self.job_dir, "layerHeight": _num(self.layer_height_mm), "materialName": self.material_name,
            "numFade": str(self.faded_layers), "numFast": str(self.num_fast), "numSlow": str(self.num_slow),
            "printProfile": self.print_profile, "printTime": f"{self.print_time_s:.6f}",
            "printerModel": self.printer_model, "printerProfile": self.printer_profile,
            "printerVariant": self.printer_variant, "prusaSlicerVersion": self.software,
            "usedMaterial": f"{self.used_material_ml:.6f}",
        }
        return "".join(f"{k} = {values[k]}\n" for k in CONFIG_KEYS)

    def prusaslicer_ini(self) -> str:
        return "".join(f"{k} = {v}\n" for k, v in sorted(self.settings.items()))


def _num(x: float) -> str:
    return f"{x:.6g}"


def job_dir_for(path: Path) -> str:
    """``jobDir`` for an output path: its file name without extension, limited to safe characters."""
    stem = Path(path).name.split(".")[0]
    if not _JOBDIR_RE.fullmatch(stem):
        raise InputError(f"SL1 output name {stem!r}: use letters, digits, '.', '_' or '-' (at most 64)",
                         hint="the name becomes every layer's file name prefix inside the archive")
    return stem


def layer_name(job_dir: str, i: int) -> str:
    return f"{job_dir}{i:05d}.png"


# ------------------------------------------------------------------------------------------ writing
_RENDER: Render | None = None
_ENCODER: png.FrameEncoder | None = None
#: a ZIP entry ready to write: (uncompressed size, CRC-32, raw deflate bytes)
Entry = tuple[int, int, bytes]


def _entry(data: bytes) -> Entry:
    return len(data), png.crc32(data), png.raw_deflate(data, 1, final=True)


def _encode_chunk(args: tuple[int, int, int, int]) -> list[Entry]:
    start, stop, width, height = args
    global _ENCODER
    if _ENCODER is None or (_ENCODER.width, _ENCODER.height) != (width, height):
        _ENCODER = png.FrameEncoder(width, height)
    assert _RENDER is not None
    return [_entry(_ENCODER.encode_tile(*_RENDER(i))) for i in range(start, stop)]


def _worker_signals() -> None:
    """Forked workers take the default SIGTERM and ignore SIGINT: the parent's handlers (a print turning
    SIGTERM into an interrupt) must not run in them; the parent decides and stops the pool."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _encoded_layers(n_layers: int, width: int, height: int, render: Render, workers: int) -> Iterator[Entry]:
    global _RENDER, _ENCODER
    chunk = 16
    tasks = [(s, min(s + chunk, n_layers), width, height) for s in range(0, n_layers, chunk)]
    _RENDER = render
    try:
        if workers <= 1 or n_layers < 2 * chunk or "fork" not in multiprocessing.get_all_start_methods():
            for t in tasks:
                yield from _encode_chunk(t)
            return
        _ENCODER = png.FrameEncoder(width, height)     # built once, inherited by the forked workers
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_signals)
        try:
            for entries in pool.imap(_encode_chunk, tasks):
                yield from entries
            pool.close()          # workers exit on their own: no SIGTERM into a worker
            pool.join()
        finally:
            pool.terminate()      # only matters when the consumer stopped early or failed
    finally:
        _RENDER = None


class _ZipWriter:
    """A minimal ZIP writer for entries deflated elsewhere (the layer workers); sha256 while writing.

    Plain ZIP (no ZIP64): at most 65535 entries and 4 GiB, far above any SL1 job (150 mm at 0.01 mm).
    """

    def __init__(self, f, when: datetime) -> None:
        t = when.astimezone(UTC)
        self._f, self._sha, self._dir, self._at = f, hashlib.sha256(), [], 0
        self._time = (t.hour << 11) | (t.minute << 5) | (t.second // 2)
        self._date = ((t.year - 1980) << 9) | (t.month << 5) | t.day

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._sha.update(data)
        self._at += len(data)

    def add(self, name: str, entry: Entry) -> None:
        size, crc, deflated = entry
        raw = name.encode("ascii")
        fields = (20, 0, 8, self._time, self._date, crc, len(deflated), size, len(raw), 0)
        self._dir.append((fields, raw, self._at))
        self._write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + raw + deflated)

    def close(self) -> str:
        if len(self._dir) > 0xFFFF or self._at > 0xFFFFFFFF:
            raise InputError(f"SL1 archive too large for a plain ZIP ({len(self._dir)} entries, {self._at} bytes)",
                             hint="use a coarser layer height")
        start = self._at
        for (_, *fields), raw, offset in self._dir:
            self._write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x0314, 20, *fields, 0, 0, 0,
                                    0o644 << 16, offset) + raw)
        n = len(self._dir)
        self._write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, self._at - start, start, 0))
        return self._sha.hexdigest()


def write_sl1(path: Path, job: Sl1Job, n_layers: int, render: Render,
              thumbnails: dict[tuple[int, int], bytes] | None = None, workers: int | None = None) -> str:
    """Write the archive to ``path`` (via a temporary file renamed into place); return its sha256.

    render : layer index -> (row0, col0, tile), see ``Render``. thumbnails : (w, h) -> PNG bytes.
    workers : processes rendering and encoding layers (default: the CPU count, at most 4).
    """
    path = Path(path)
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            zw = _ZipWriter(f, job.created)
            zw.add("config.ini", _entry(job.config_ini().encode("utf-8")))
            zw.add("prusaslicer.ini", _entry(job.prusaslicer_ini().encode("utf-8")))
            for i, entry in enumerate(_encoded_layers(n_layers, job.width_px, job.height_px, render, workers)):
                zw.add(layer_name(job.job_dir, i), entry)
            for (w, h), data in sorted((thumbnails or {}).items()):
                zw.add(f"thumbnail/thumbnail{w}x{h}.png", _entry(data))
            digest = zw.close()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return digest


# ------------------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class Sl1Archive:
    """An SL1 archive as read back: its ini files, layer names and thumbnails; layers decode on demand."""

    path: Path
    config: dict[str, str]
    settings: dict[str, str]
    layer_names: list[str]
    thumbnails: dict[str, tuple[int, int]]

    @property
    def n_layers(self) -> int:
        return len(self.layer_names)

    def layer(self, i: int) -> np.ndarray:
        """(h, w) uint8 pixels of layer ``i``."""
        with zipfile.ZipFile(self.path) as zf:
            return png.decode(zf.read(self.layer_names[i]))

    def layers(self) -> Iterator[np.ndarray]:
        with zipfile.ZipFile(self.path) as zf:
            for name in self.layer_names:
                yield png.decode(zf.read(name))


def parse_ini(text: str) -> dict[str, str]:
    """``key = value`` lines into a dict (other lines are ignored)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if " = " in line:
            k, v = line.split(" = ", 1)
            out[k.strip()] = v.strip()
    return out


def read_sl1(path: Path) -> Sl1Archive:
    """Open an SL1 archive; ``InputError`` when it is not one (no config.ini, bad layer names)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if "config.ini" not in names:
                raise InputError(f"{path}: not an SL1 archive (no config.ini)")
            config = parse_ini(zf.read("config.ini").decode("utf-8"))
            settings = parse_ini(zf.read("prusaslicer.ini").decode("utf-8")) if "prusaslicer.ini" in names else {}
            thumbs = {}
            for n in names:
                m = re.fullmatch(r"thumbnail/thumbnail(\d+)x(\d+)\.png", n)
                if m:
                    thumbs[n] = (int(m.group(1)), int(m.group(2)))
    except (OSError, zipfile.BadZipFile) as err:
        raise InputError(f"{path}: cannot read as a ZIP archive ({err})") from None
    job = config.get("jobDir", "")
    pat = re.compile(re.escape(job) + r"(\d{5})\.png")
    layers = sorted((n for n in names if pat.fullmatch(n)), key=lambda n: int(pat.fullmatch(n).group(1)))
    if [int(pat.fullmatch(n).group(1)) for n in layers] != list(range(len(layers))):
        raise InputError(f"{path}: layer files are not numbered 00000..{len(layers) - 1:05d}")
    return Sl1Archive(path, config, settings, layers, thumbs)
