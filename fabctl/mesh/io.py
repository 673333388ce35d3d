"""Mesh intake: read a design file (STL, 3MF, OBJ, PLY, OFF) into a ``MeshInput`` in millimetres.

Every failure a file can cause is a one-line ``MeshError`` or ``UnitsError`` (exit 2) that names the
file's basename and the problem; nothing the file says in free text (STL header or solid name, 3MF
metadata, OBJ comments) reaches a message or a note. Zero triangles is always an error.

Policies:

* **Units.** 3MF states its unit and that is used; a declared unit that disagrees is refused. Every other
  format needs ``units``; without it ``UnitsError``. A size implausible for a guide is refused with a
  hint (``units.check_guide_extent``), never rescaled.
* **Binary STL size.** A binary STL is ``84 + 50 n`` bytes for ``n`` facets. Fewer bytes is refused as
  truncated; up to 49 extra bytes (less than one facet, e.g. a trailing newline) are ignored with a note;
  50 or more extra bytes means the count and the data disagree, refused. Binary is recognised by that size
  rule first, so a binary header starting with ``solid`` is not mistaken for ASCII.
* **Limits.** ``max_facets`` caps triangles in every format and is checked against header counts and cheap
  pre-counts before arrays of that size exist; the file size is capped from it as well.
* **Vertices** are merged by exact position (all formats), in order of first use, so faces keep the file's
  order and winding.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from fabctl.errors import MeshError, UnitsError
from fabctl.mesh.io_common import (
    DEFAULT_MAX_FACETS,
    ParsedMesh,
    check_facet_cap,
    fail,
    merge_exact,
    plural,
)
from fabctl.mesh.types import MeshInput
from fabctl.units import check_guide_extent, mm_per

__all__ = [
    "DEFAULT_MAX_FACETS",
    "DESIGN_COPY_HEADER",
    "FORMATS",
    "read_mesh",
    "read_mesh_bytes",
    "sniff_format",
    "write_design_copy",
]

#: ``MeshInput.source_format`` values
FORMATS = ("stl-binary", "stl-ascii", "3mf", "obj", "ply", "off")

#: the fixed header of every stored design copy: neutral, nothing from the source
DESIGN_COPY_HEADER = b"fabctl design copy".ljust(80, b" ")

#: one binary STL facet record: normal, three corners, attribute byte count (50 bytes, little-endian)
STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attr", "<u2")])

#: bytes per triangle allowed in the most verbose text format, to cap the file size from ``max_facets``
_MAX_BYTES_PER_FACET = 400

_EXT_FAMILY = {".stl": "stl", ".3mf": "3mf", ".obj": "obj", ".ply": "ply", ".off": "off"}
_OFF_HEADER = re.compile(rb"\A\s*(?:#[^\n]*\n\s*)*(?:ST)?C?N?4?n?OFF(?![A-Za-z0-9_])")
_OBJ_LINE = re.compile(rb"^[ \t]*(?:v|f)[ \t]", re.M)


def _binary_stl_size_fits(data: bytes) -> bool:
    """True if ``data`` has the size of a binary STL whose header count it carries (< 50 bytes over)."""
    if len(data) < 84:
        return False
    n = int.from_bytes(data[80:84], "little")
    extra = len(data) - (84 + 50 * n)
    return 0 <= extra < 50


def _looks_like_ascii_stl(data: bytes) -> bool:
    """Starts with ``solid`` (after a BOM or whitespace) and has no NUL byte, which binary data has."""
    head = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    return head.lstrip()[:5].lower() == b"solid" and b"\x00" not in data


def sniff_format(path: str | os.PathLike[str], data: bytes) -> str:
    """The format of ``data`` (one of ``FORMATS``), from its content first and its file name second.

    Raises ``MeshError`` for an empty file or content no reader recognises.
    """
    if not data:
        fail("file is empty (0 bytes)")
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "3mf"
    if data[:3] == b"ply" and data[3:4] in (b"\n", b"\r"):
        return "ply"
    if _binary_stl_size_fits(data):
        return "stl-binary"
    if _looks_like_ascii_stl(data):
        return "stl-ascii"
    if _OFF_HEADER.match(data[:4096]):
        return "off"
    family = _EXT_FAMILY.get(Path(path).suffix.lower())
    if family == "stl":
        return "stl-binary"  # the size check will say what is wrong
    if family is not None:
        return family
    if b"\x00" not in data[:65536] and _OBJ_LINE.search(data[:65536]):
        return "obj"
    fail("not a recognised mesh format (STL, 3MF, OBJ, PLY or OFF)")


def read_binary_stl(data: bytes, max_facets: int) -> ParsedMesh:
    """Binary STL -> triangle soup, with one ``np.frombuffer`` over the facet records.

    returns ParsedMesh with vertices (3m, 3) float32 corners and faces ``None``.
    """
    size = len(data)
    if size < 84:
        fail(f"truncated: {size} bytes, shorter than the 84-byte binary STL header")
    n = int.from_bytes(data[80:84], "little")
    need = 84 + 50 * n
    held = (size - 84) // 50
    if n == 0:
        if size == 84:
            fail("binary STL holds no facets (empty)")
        fail(f"size disagrees with facet count: header says 0, file holds {held}")
    if size < need:
        fail(
            f"truncated: header says {plural(n, 'facet')} ({need} bytes), file has {size} bytes "
            f"({plural(held, 'whole facet')})"
        )
    extra = size - need
    if extra >= 50:
        fail(f"size disagrees with facet count: header says {n}, file holds {held}")
    check_facet_cap(n, max_facets, "facet")
    notes = []
    if extra:
        notes.append(f"{plural(extra, 'trailing byte')} after {plural(n, 'facet')} ignored")
    if data[:80].lstrip()[:5].lower() == b"solid":
        notes.append("binary STL although its header starts with 'solid'")
    records = np.frombuffer(data, dtype=STL_RECORD, count=n, offset=84)
    flagged = int(np.count_nonzero(records["attr"]))
    if flagged:
        notes.append(f"{plural(flagged, 'facet')} carry attribute bytes (e.g. colour), ignored")
    corners = np.ascontiguousarray(records["corners"]).reshape(-1, 3)
    return ParsedMesh(vertices=corners, faces=None, notes=notes)


def _readers():
    """Format name -> reader(data, max_facets) -> ParsedMesh (imported late to keep import cheap)."""
    from fabctl.mesh import io_3mf, io_ply, io_text

    return {
        "stl-binary": read_binary_stl,
        "stl-ascii": io_text.read_ascii_stl,
        "obj": io_text.read_obj,
        "off": io_text.read_off,
        "ply": io_ply.read_ply,
        "3mf": io_3mf.read_3mf,
    }


def _check_finite(parsed: ParsedMesh, corners: np.ndarray) -> None:
    """Refuse NaN/inf coordinates: how many facets, and the first facet index (0-based)."""
    if np.isfinite(corners).all() and (parsed.faces is None or np.isfinite(parsed.vertices).all()):
        return
    good = np.isfinite(corners).all(axis=1).reshape(-1, 3).all(axis=1)
    if not good.all():
        bad = np.flatnonzero(~good)
        fail(
            f"{plural(len(bad), 'facet has', 'facets have')} NaN or infinite coordinates "
            f"(first: facet {int(bad[0])}, counting from 0)"
        )
    if parsed.faces is not None and not np.isfinite(parsed.vertices).all():
        v = int(np.flatnonzero(~np.isfinite(parsed.vertices).all(axis=1))[0])
        fail(f"vertex {v} (counting from 0) has NaN or infinite coordinates")


def _finish(parsed: ParsedMesh, max_facets: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Corners -> exact-merged (n, 3) vertices in file units and (m, 3) int64 faces, plus notes."""
    notes = list(parsed.notes)
    if parsed.faces is None:
        corners = parsed.vertices
    else:
        faces = parsed.faces
        nv = len(parsed.vertices)
        if faces.size and (faces.min() < 0 or faces.max() >= nv):
            fail(f"a face refers to a vertex outside 0..{nv - 1}")
        corners = parsed.vertices[faces.ravel()]
    m = len(corners) // 3
    if m == 0:
        fail("holds no triangles (empty)")
    check_facet_cap(m, max_facets)
    _check_finite(parsed, corners)
    unique, inverse = merge_exact(corners)
    if parsed.faces is not None:
        used = int(np.count_nonzero(np.bincount(parsed.faces.ravel(), minlength=len(parsed.vertices))))
        unused = len(parsed.vertices) - used
        if unused:
            notes.append(f"{plural(unused, 'vertex', 'vertices')} used by no face ignored")
        if used > len(unique):
            notes.append(f"{plural(used - len(unique), 'vertex', 'vertices')} at duplicate positions merged")
    return unique, inverse.reshape(-1, 3), notes


def _resolve_unit(name: str, fmt: str, units: str | None, file_unit: str | None) -> tuple[str, str]:
    """(unit, units_source): the file's unit if it states one, else the declared one."""
    if file_unit is not None:
        if units is not None and mm_per(units) != mm_per(file_unit):
            raise UnitsError(
                f"{name}: file states its unit as {file_unit} but {units} was declared",
                hint="drop --units (a 3MF file carries its own unit), or check the file",
            )
        return file_unit, "file"
    if units is None:
        raise UnitsError(
            f"{name}: file has no unit; pass --units mm|cm|m|in",
            hint=f"{fmt} files carry no unit; declare the one the design was made in",
        )
    mm_per(units)  # unknown unit -> UnitsError
    return units, "declared"


def read_mesh_bytes(
    data: bytes,
    fmt: str | None = None,
    *,
    name: str = "mesh",
    units: str | None = None,
    max_facets: int = DEFAULT_MAX_FACETS,
    check_extent: bool = True,
) -> MeshInput:
    """Read a mesh from its bytes; ``name`` (a basename) is used in messages and for format sniffing.

    ``fmt`` is one of ``FORMATS``, ``"stl"`` (either encoding) or ``None`` to sniff. See ``read_mesh``.
    """
    sha = hashlib.sha256(data).hexdigest()
    try:
        fmt = sniff_format(name, data) if fmt is None else fmt
        if fmt == "stl":  # either encoding
            fmt = sniff_format(Path(name).with_suffix(".stl"), data)
        if fmt not in FORMATS:
            fail(f"unknown format {fmt!r}")
        if fmt != "3mf":  # no unit in the file: refuse before the work of parsing
            _resolve_unit(name, fmt, units, None)
        try:
            parsed = _readers()[fmt](data, max_facets)
        except MemoryError:
            fail("too large to read into memory")
        except (ValueError, OverflowError, UnicodeError) as exc:  # a reader missed a malformed case
            fail(f"malformed {fmt} file ({type(exc).__name__})")
        notes = _ext_notes(name, fmt)
        unit, units_source = _resolve_unit(name, fmt, units, parsed.file_unit)
        vertices, faces, more = _finish(parsed, max_facets)
        vertices = vertices.astype(np.float64) * mm_per(unit)
        if check_extent:
            check_guide_extent(float((vertices.max(axis=0) - vertices.min(axis=0)).max()), unit)
    except (MeshError, UnitsError) as err:
        if err.message.startswith(f"{name}: "):
            raise
        raise type(err)(f"{name}: {err.message}", hint=err.hint) from None
    return MeshInput(
        vertices=vertices,
        faces=faces,
        source_sha256=sha,
        source_format=fmt,
        units=unit,
        units_source=units_source,
        notes=tuple(notes + more),
    )


def _ext_notes(name: str, fmt: str) -> list[str]:
    """A note when the content's format is not what the file name's extension says."""
    family = _EXT_FAMILY.get(Path(name).suffix.lower())
    got = fmt.split("-")[0]
    if family is not None and family != got:
        return [f"content is {got.upper()} although the name ends in {Path(name).suffix.lower()}"]
    return []


def read_mesh(
    path: str | os.PathLike[str],
    units: str | None = None,
    *,
    max_facets: int = DEFAULT_MAX_FACETS,
    check_extent: bool = True,
) -> MeshInput:
    """Read a design mesh file into a ``MeshInput`` (vertices in mm, faces in file order and winding).

    path : STL (binary or ASCII), 3MF, OBJ, PLY or OFF, recognised by content first, extension second
    units : the unit the file's numbers are in (``mm``, ``cm``, ``m``, ``in``); required except for 3MF,
        which states its own (a disagreeing ``units`` is refused)
    max_facets : refuse more triangles than this, before allocating for them
    check_extent : refuse a largest extent implausible for a guide plate (``units.check_guide_extent``)

    Raises ``MeshError`` (unreadable, malformed, empty, over the limit) or ``UnitsError`` (exit 2).
    """
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
        limit = max_facets * _MAX_BYTES_PER_FACET + (1 << 20)
        if size > limit:
            raise MeshError(
                f"{name}: file is {size} bytes, more than a {max_facets}-triangle mesh needs ({limit})",
                hint="raise max_facets if this design really is that large",
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise MeshError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise MeshError(f"{name}: is a directory, not a mesh file") from None
    except OSError as exc:
        raise MeshError(f"{name}: cannot read file ({exc.strerror or type(exc).__name__})") from None
    except MemoryError:
        raise MeshError(f"{name}: too large to read into memory") from None
    return read_mesh_bytes(
        data, None, name=name, units=units, max_facets=max_facets, check_extent=check_extent
    )


def design_copy_bytes(mesh: MeshInput) -> bytes:
    """The binary STL bytes of a design copy: neutral header, unit normals, float32 mm, zero attributes."""
    tri = mesh.vertices[mesh.faces]  # (m, 3, 3) float64 mm
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normal, axis=1)
    ok = length > 0
    normal[ok] /= length[ok, None]
    normal[~ok] = 0.0
    records = np.zeros(len(tri), dtype=STL_RECORD)
    records["normal"] = normal
    records["corners"] = tri
    header = DESIGN_COPY_HEADER + np.uint32(len(tri)).astype("<u4").tobytes()
    return header + records.tobytes()


def write_design_copy(mesh: MeshInput, path: str | os.PathLike[str]) -> str:
    """Write the stored copy of a design as binary STL and return the sha256 of the bytes written.

    The copy holds only geometry: the fixed ``DESIGN_COPY_HEADER`` (no text from the source), unit normals
    from the winding, float32 corners in mm, attribute bytes zero. ``read_mesh(copy, units="mm")`` gives
    back the same faces and the vertices to float32 precision. Written to a temporary file in the same
    folder and renamed into place, so a reader never sees half a copy.
    """
    path = Path(path)
    blob = design_copy_bytes(mesh)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".design-copy-", suffix=".stl", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise MeshError(
            f"{path.name}: cannot write design copy ({exc.strerror or type(exc).__name__})"
        ) from None
    return hashlib.sha256(blob).hexdigest()
