"""PLY reader (ASCII, binary little- and big-endian).

Uses the ``vertex`` element's x/y/z and the ``face`` element's ``vertex_indices`` (or ``vertex_index``)
list; every other property and element is skipped. An element whose lists all have the same length (the
usual all-triangle face element) is read with one ``np.frombuffer`` (binary) or one reshape (ASCII); mixed
polygon sizes fall back to a record-by-record walk.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from fabctl.mesh.io_common import ParsedMesh, check_facet_cap, fail, fan_triangulate, plural

_TYPES = {
    b"char": "i1", b"int8": "i1", b"uchar": "u1", b"uint8": "u1",
    b"short": "i2", b"int16": "i2", b"ushort": "u2", b"uint16": "u2",
    b"int": "i4", b"int32": "i4", b"uint": "u4", b"uint32": "u4",
    b"float": "f4", b"float32": "f4", b"double": "f8", b"float64": "f8",
}  # fmt: skip
_STRUCT = {"i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I", "f4": "f", "f8": "d"}
_FACE_LISTS = ("vertex_indices", "vertex_index")
_MAX_HEADER = 1 << 20


@dataclass
class _Prop:
    name: str
    dtype: str  # numpy type code without byte order
    count_dtype: str | None = None  # set for list properties


@dataclass
class _Element:
    name: str
    count: int
    props: list[_Prop] = field(default_factory=list)


def _parse_header(data: bytes) -> tuple[str, list[_Element], int]:
    """-> (format, elements, offset of the body)."""
    end = data.find(b"end_header", 0, _MAX_HEADER)
    if end < 0:
        fail("PLY header has no 'end_header'")
    nl = data.find(b"\n", end)
    body = len(data) if nl < 0 else nl + 1
    lines = data[:end].split(b"\n")
    fmt, elements = None, []
    for lineno, raw in enumerate(lines, 1):
        toks = raw.split()
        if not toks or toks[0] in (b"comment", b"obj_info", b"ply"):
            continue
        try:
            if toks[0] == b"format":
                fmt = {b"ascii": "ascii", b"binary_little_endian": "<", b"binary_big_endian": ">"}[toks[1]]
            elif toks[0] == b"element":
                elements.append(_Element(toks[1].decode("ascii"), int(toks[2])))
            elif toks[0] == b"property" and toks[1] == b"list":
                if _TYPES[toks[2]].startswith("f"):
                    fail(f"line {lineno}: PLY list length must have an integer type")
                elements[-1].props.append(_Prop(toks[4].decode("ascii"), _TYPES[toks[3]], _TYPES[toks[2]]))
            elif toks[0] == b"property":
                elements[-1].props.append(_Prop(toks[2].decode("ascii"), _TYPES[toks[1]]))
            else:
                fail(f"line {lineno}: unknown PLY header statement")
        except (KeyError, IndexError, ValueError, UnicodeDecodeError):
            fail(f"line {lineno}: malformed PLY header line")
    if fmt is None:
        fail("PLY header has no 'format' line")
    if any(e.count < 0 for e in elements):
        fail("PLY header declares a negative element count")
    return fmt, elements, body


def read_ply(data: bytes, max_facets: int) -> ParsedMesh:
    """PLY -> vertices (n, 3) float64, faces (m, 3) int64 (polygons fan-triangulated)."""
    fmt, elements, body = _parse_header(data)
    names = [e.name for e in elements]
    if "vertex" not in names:
        fail("PLY has no vertex element")
    if "face" not in names:
        fail("PLY has no face element (empty or points only)")
    face = elements[names.index("face")]
    check_facet_cap(face.count, max_facets, "face")
    vert = elements[names.index("vertex")]
    if not {"x", "y", "z"} <= {p.name for p in vert.props}:
        fail("PLY vertex element has no x, y and z properties")
    face_list = next((p for p in face.props if p.name in _FACE_LISTS and p.count_dtype), None)
    if face_list is None:
        fail("PLY face element has no vertex_indices list")
    read = _BinaryBody(data, body, fmt) if fmt != "ascii" else _AsciiBody(data, body)
    columns: dict[str, dict[str, np.ndarray]] = {}
    for el in elements:
        columns[el.name] = read.element(el)
    notes = []
    if read.leftover():
        notes.append(f"{read.leftover()} {read.unit} after the last PLY element ignored")
    v = columns["vertex"]
    vertices = np.column_stack([v["x"], v["y"], v["z"]]).astype(np.float64)
    counts, flat = columns["face"][face_list.name]
    if np.any(counts < 3):
        k = int(np.flatnonzero(counts < 3)[0])
        fail(f"PLY face {k} has {plural(int(counts[k]), 'vertex', 'vertices')}, expected at least 3")
    check_facet_cap(int((counts - 2).sum()), max_facets)
    flat = flat.astype(np.int64)
    bad = np.flatnonzero((flat < 0) | (flat >= len(vertices)))
    if len(bad):
        k = int(np.searchsorted(np.cumsum(counts), bad[0], side="right"))
        fail(f"PLY face {k} refers to vertex {int(flat[bad[0]])}, the file has "
             f"{plural(len(vertices), 'vertex', 'vertices')}")  # fmt: skip
    return ParsedMesh(vertices=vertices, faces=fan_triangulate(counts, flat), notes=notes)


class _BinaryBody:
    """Reads elements one after the other from a binary body."""

    unit = "bytes"

    def __init__(self, data: bytes, offset: int, order: str) -> None:
        self.data, self.offset, self.order = data, offset, order

    def leftover(self) -> int:
        return len(self.data) - self.offset

    def _need(self, nbytes: int, el: _Element) -> None:
        if self.offset + nbytes > len(self.data):
            fail(f"truncated: PLY element '{el.name}' needs more bytes than the file has"
                 if el.name in ("vertex", "face") else "truncated: a PLY element needs more bytes than the file has")  # fmt: skip

    def element(self, el: _Element) -> dict:
        """-> {scalar name: (count,) array, list name: (counts (count,), flat values)}."""
        o = self.order
        lists = [p for p in el.props if p.count_dtype]
        if el.count == 0:
            return {p.name: ((np.zeros(0, np.int64), np.zeros(0)) if p.count_dtype else np.zeros(0))
                    for p in el.props}  # fmt: skip
        ks = self._first_counts(el) if lists else {}
        fields = []
        for p in el.props:
            if p.count_dtype:
                fields += [(p.name + " count", o + p.count_dtype), (p.name, o + p.dtype, (ks[p.name],))]
            else:
                fields.append((p.name, o + p.dtype))
        dt = np.dtype(fields)
        fixed = self.offset + el.count * dt.itemsize <= len(self.data)
        if fixed:
            rec = np.frombuffer(self.data, dtype=dt, count=el.count, offset=self.offset)
            fixed = all(np.all(rec[p.name + " count"] == ks[p.name]) for p in lists)
        if not fixed and not lists:
            self._need(el.count * dt.itemsize, el)
        if fixed:
            self.offset += el.count * dt.itemsize
            out = {p.name: rec[p.name] for p in el.props if not p.count_dtype}
            for p in lists:
                out[p.name] = (np.full(el.count, ks[p.name], np.int64), rec[p.name].reshape(-1))
            return out
        return self._walk(el)

    def _first_counts(self, el: _Element) -> dict[str, int]:
        """List lengths of the element's first record."""
        pos, ks = self.offset, {}
        for p in el.props:
            if p.count_dtype:
                size = np.dtype(p.count_dtype).itemsize
                if pos + size > len(self.data):
                    self._need(pos + size - self.offset, el)
                k = int(np.frombuffer(self.data, self.order + p.count_dtype, 1, pos)[0])
                ks[p.name] = max(k, 0)
                pos += size + max(k, 0) * np.dtype(p.dtype).itemsize
            else:
                pos += np.dtype(p.dtype).itemsize
        return ks

    def _walk(self, el: _Element) -> dict:
        """Record-by-record reader for lists of mixed lengths (e.g. triangles and quads)."""
        o, pos, data = self.order, self.offset, self.data
        scal: dict[str, list] = {p.name: [] for p in el.props if not p.count_dtype}
        lst: dict[str, tuple[list, list]] = {p.name: ([], []) for p in el.props if p.count_dtype}
        value = {p.name: struct.Struct(o + _STRUCT[p.dtype]) for p in el.props}
        count = {p.name: struct.Struct(o + _STRUCT[p.count_dtype]) for p in el.props if p.count_dtype}
        try:
            for _ in range(el.count):
                for p in el.props:
                    if p.count_dtype:
                        (k,) = count[p.name].unpack_from(data, pos)
                        pos += count[p.name].size
                        size = value[p.name].size * k
                        if k < 0 or pos + size > len(data):
                            raise struct.error("list runs past the end")
                        lst[p.name][0].append(k)
                        lst[p.name][1].append(np.frombuffer(data, o + p.dtype, k, pos))
                        pos += size
                    else:
                        scal[p.name].append(value[p.name].unpack_from(data, pos)[0])
                        pos += value[p.name].size
        except struct.error:
            fail("truncated: a PLY element needs more bytes than the file has")
        self.offset = pos
        out: dict = {k: np.array(v) for k, v in scal.items()}
        for k, (c, vals) in lst.items():
            out[k] = (np.array(c, np.int64), np.concatenate(vals) if vals else np.zeros(0))
        return out


class _AsciiBody:
    """Reads elements one after the other from the whitespace-separated tokens of an ASCII body."""

    unit = "values"

    def __init__(self, data: bytes, offset: int) -> None:
        self.tokens = data[offset:].split()
        self.pos = 0

    def leftover(self) -> int:
        return len(self.tokens) - self.pos

    def element(self, el: _Element) -> dict:
        tok, n = self.tokens, el.count
        lists = [p for p in el.props if p.count_dtype]
        if n == 0:
            return {p.name: ((np.zeros(0, np.int64), np.zeros(0)) if p.count_dtype else np.zeros(0))
                    for p in el.props}  # fmt: skip
        # the layout of a record if every list has the length of the first record's
        widths, pos = [], self.pos
        for p in el.props:
            k = self._int(pos) if p.count_dtype else 0
            widths.append(1 + max(k, 0) if p.count_dtype else 1)
            pos += widths[-1]
        width = sum(widths)
        if self.pos + n * width > len(tok):
            if not lists:
                fail(f"truncated: PLY element '{el.name}' has fewer values than declared"
                     if el.name in ("vertex", "face") else "truncated: a PLY element has fewer values than declared")  # fmt: skip
            return self._walk(el)
        table = np.array(tok[self.pos : self.pos + n * width]).reshape(n, width)
        starts = np.cumsum(widths) - widths
        try:
            for p, s, w in zip(el.props, starts, widths, strict=True):
                if p.count_dtype and not np.all(table[:, s].astype(np.int64) == w - 1):
                    return self._walk(el)
            out = {}
            for p, s, w in zip(el.props, starts, widths, strict=True):
                kind = np.float64 if p.dtype.startswith("f") else np.int64
                if p.count_dtype:
                    out[p.name] = (
                        np.full(n, w - 1, np.int64),
                        table[:, s + 1 : s + w].astype(kind).reshape(-1),
                    )
                else:
                    out[p.name] = table[:, s].astype(kind)
        except ValueError:
            fail(f"PLY element '{el.name}' holds a value that is not a number"
                 if el.name in ("vertex", "face") else "a PLY element holds a value that is not a number")  # fmt: skip
        self.pos += n * width
        return out

    def _int(self, pos: int) -> int:
        try:
            return int(self.tokens[pos])
        except (IndexError, ValueError):
            fail("truncated or malformed PLY list length")

    def _walk(self, el: _Element) -> dict:
        """Record-by-record reader for lists of mixed lengths."""
        scal = {p.name: [] for p in el.props if not p.count_dtype}
        lst = {p.name: ([], []) for p in el.props if p.count_dtype}
        pos, tok = self.pos, self.tokens
        for _ in range(el.count):
            for p in el.props:
                if p.count_dtype:
                    k = self._int(pos)
                    if k < 0 or pos + 1 + k > len(tok):
                        fail("truncated or malformed PLY list")
                    lst[p.name][0].append(k)
                    lst[p.name][1].extend(tok[pos + 1 : pos + 1 + k])
                    pos += 1 + k
                else:
                    if pos >= len(tok):
                        fail("truncated: a PLY element has fewer values than declared")
                    scal[p.name].append(tok[pos])
                    pos += 1
        self.pos = pos
        try:
            kinds = {p.name: np.float64 if p.dtype.startswith("f") else np.int64 for p in el.props}
            out = {k: np.array(v, dtype=bytes).astype(kinds[k]) for k, v in scal.items()}
            for k, (c, vals) in lst.items():
                out[k] = (np.array(c, np.int64), np.array(vals, dtype=bytes).astype(kinds[k]).reshape(-1))
        except ValueError:
            fail("a PLY element holds a value that is not a number")
        return out
