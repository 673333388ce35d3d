"""Common Layer Interface (CLI) slice files, ASCII and binary, for industrial laser SLA: writer and reader.

Header (ASCII in both forms)::

    $$HEADERSTART
    $$ASCII | $$BINARY
    $$UNITS/00000001.000000        coordinates x UNITS = mm (we write mm, UNITS = 1)
    $$VERSION/200
    $$LABEL/1,<job name>            a case id at most: no patient data
    $$DATE/<ddmmyy>
    $$DIMENSION/x1,y1,z1,x2,y2,z2
    $$LAYERS/<n>
    $$HEADEREND

ASCII geometry: ``$$GEOMETRYSTART``, per layer ``$$LAYER/z`` then ``$$POLYLINE/id,dir,n,x1,y1,...`` (dir 0
clockwise = hole, 1 counter-clockwise = outer, 2 open) and ``$$HATCHES/id,n,x1s,y1s,x1e,y1e,...``;
``$$GEOMETRYEND``. Binary geometry (little-endian, the CLI "long" commands): ``uint16 127`` + ``float32 z``
(start layer), ``uint16 130`` + ``int32 id, dir, n`` + ``float32 x 2n`` (polyline), ``uint16 132`` +
``int32 id, n`` + ``float32 x 4n`` (hatches). The short commands (128, 129, 131) are read too.

Polylines are the nominal slice loops (closed: the first point is repeated at the end); the machine applies
its own beam compensation. Hatches fill inside the loops offset by half the spot (``laserpath``).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fabctl.errors import InputError
from fabctl.formats import laserpath
from fabctl.slicestack import SliceStack


@dataclass
class CliLayer:
    z_mm: float
    polylines: list[tuple[int, np.ndarray]] = field(default_factory=list)   # (dir, (k, 2))
    hatches: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 2)))


def _layers(stack: SliceStack, spot_mm: float, spacing_mm: float):
    area = stack.loop_area_mm2
    tops = stack.layer_tops_mm
    for i in range(stack.n_layers):
        pts, lo = stack.layer_points(i)
        first = stack.layer_offsets[i]
        polys = [(1 if area[first + k] > 0 else 0, np.vstack([pts[lo[k]:lo[k + 1]], pts[lo[k]:lo[k] + 1]]))
                 for k in range(len(lo) - 1)]
        off = laserpath.offset_loops(pts, lo, spot_mm / 2.0)
        hatches = np.zeros((0, 2, 2))
        if len(off):
            nxt = np.arange(1, len(off) + 1)
            nxt[lo[1:] - 1] = lo[:-1]
            hatches = laserpath.hatch(off, off[nxt], spacing_mm, laserpath.layer_angle(i))
        yield CliLayer(float(tops[i]), polys, hatches)


def _header(stack: SliceStack, job_name: str, binary: bool, date: datetime) -> bytes:
    (x0, y0), (x1, y1) = stack.bounds_xy_mm
    z1 = float(stack.layer_tops_mm[-1]) if stack.n_layers else 0.0
    lines = ["$$HEADERSTART", "$$BINARY" if binary else "$$ASCII", "$$UNITS/00000001.000000", "$$VERSION/200",
             f"$$LABEL/1,{job_name}", f"$$DATE/{date.astimezone(UTC):%d%m%y}",
             f"$$DIMENSION/{x0:.6f},{y0:.6f},0.000000,{x1:.6f},{y1:.6f},{z1:.6f}",
             f"$$LAYERS/{stack.n_layers:06d}", "$$HEADEREND"]
    return ("\n".join(lines) + "\n").encode("ascii")


def _ascii_layer(layer: CliLayer) -> bytes:
    out = [f"$$LAYER/{layer.z_mm:.6f}"]
    for d, p in layer.polylines:
        out.append(f"$$POLYLINE/1,{d},{len(p)}," + ",".join(f"{v:.6f}" for v in p.ravel()))
    if len(layer.hatches):
        out.append(f"$$HATCHES/1,{len(layer.hatches)}," + ",".join(f"{v:.6f}" for v in layer.hatches.ravel()))
    return ("\n".join(out) + "\n").encode("ascii")


def _binary_layer(layer: CliLayer) -> bytes:
    out = [struct.pack("<Hf", 127, layer.z_mm)]
    for d, p in layer.polylines:
        out.append(struct.pack("<Hiii", 130, 1, d, len(p)) + p.astype("<f4").tobytes())
    if len(layer.hatches):
        out.append(struct.pack("<Hii", 132, 1, len(layer.hatches)) + layer.hatches.astype("<f4").tobytes())
    return b"".join(out)


def write_cli(path: Path, stack: SliceStack, job_name: str, spot_mm: float, hatch_spacing_mm: float,
              binary: bool = False, date: datetime | None = None) -> str:
    """Write the stack as a CLI file (temporary file renamed into place); return its sha256. ``date`` is the
    header's ``$$DATE`` (default: now; the pipeline passes the design revision's time, so the same inputs
    give the same bytes)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as f:
            def put(data: bytes) -> None:
                f.write(data)
                h.update(data)
            put(_header(stack, job_name, binary, date or datetime.now(UTC)))
            if not binary:
                put(b"$$GEOMETRYSTART\n")
            for layer in _layers(stack, spot_mm, hatch_spacing_mm):
                put(_binary_layer(layer) if binary else _ascii_layer(layer))
            if not binary:
                put(b"$$GEOMETRYEND\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return h.hexdigest()


def read_cli(path: Path) -> tuple[dict[str, str], list[CliLayer]]:
    """Parse an ASCII or binary CLI file: header fields (``UNITS``, ``LAYERS``, ...) and layers in mm."""
    data = Path(path).read_bytes()
    end = data.find(b"$$HEADEREND")
    if not data.startswith(b"$$HEADERSTART") or end < 0:
        raise InputError(f"{path}: not a CLI file (no $$HEADERSTART ... $$HEADEREND)")
    header: dict[str, str] = {}
    for line in data[:end].decode("ascii").split("\n"):
        line = line.strip()
        if line.startswith("$$") and line not in ("$$HEADERSTART",):
            k, _, v = line[2:].partition("/")
            header[k] = v
    units = float(header.get("UNITS", "1"))
    body = data[end + len(b"$$HEADEREND"):]
    if "BINARY" in header:
        return header, _read_binary(body.lstrip(b"\r\n") if body[:1] in (b"\n", b"\r") else body, units)
    return header, _read_ascii(body.decode("ascii"), units)


def _read_ascii(text: str, units: float) -> list[CliLayer]:
    layers: list[CliLayer] = []
    for line in text.replace("\r", "").split("\n"):
        cmd, _, arg = line.strip().partition("/")
        if cmd == "$$LAYER":
            layers.append(CliLayer(float(arg) * units))
        elif cmd == "$$POLYLINE" and layers:
            v = np.array(arg.split(","), dtype=np.float64)
            n = int(v[2])
            layers[-1].polylines.append((int(v[1]), v[3:3 + 2 * n].reshape(n, 2) * units))
        elif cmd == "$$HATCHES" and layers:
            v = np.array(arg.split(","), dtype=np.float64)
            n = int(v[1])
            hs = v[2:2 + 4 * n].reshape(n, 2, 2) * units
            layers[-1].hatches = np.concatenate([layers[-1].hatches, hs])
    return layers


def _read_binary(b: bytes, units: float) -> list[CliLayer]:
    layers: list[CliLayer] = []
    pos = 0
    while pos + 2 <= len(b):
        (cmd,) = struct.unpack_from("<H", b, pos)
        pos += 2
        if cmd in (127, 128):
            z = struct.unpack_from("<f" if cmd == 127 else "<H", b, pos)[0]
            pos += 4 if cmd == 127 else 2
            layers.append(CliLayer(float(z) * units))
        elif cmd in (129, 130):
            fmt, cfmt = ("<iii", "<f4") if cmd == 130 else ("<HHH", "<u2")
            _, d, n = struct.unpack_from(fmt, b, pos)
            pos += struct.calcsize(fmt)
            size = np.dtype(cfmt).itemsize * 2 * n
            p = np.frombuffer(b, cfmt, 2 * n, pos).astype(np.float64).reshape(n, 2) * units
            pos += size
            layers[-1].polylines.append((int(d), p))
        elif cmd in (131, 132):
            fmt, cfmt = ("<ii", "<f4") if cmd == 132 else ("<HH", "<u2")
            _, n = struct.unpack_from(fmt, b, pos)
            pos += struct.calcsize(fmt)
            hs = np.frombuffer(b, cfmt, 4 * n, pos).astype(np.float64).reshape(n, 2, 2) * units
            pos += np.dtype(cfmt).itemsize * 4 * n
            layers[-1].hatches = np.concatenate([layers[-1].hatches, hs])
        else:
            raise InputError(f"CLI binary: unknown command {cmd} at byte {pos - 2}")
    return layers


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
