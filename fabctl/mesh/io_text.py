"""Text mesh readers: ASCII STL, OBJ and OFF.

Each is strict about syntax and reports the first error with its line number (counting from 1), without
quoting the file. The happy path is tokenised in C (``bytes.split``, ``re``) and converted with numpy; a
slow line-by-line pass runs only to name the line of an error.
"""

from __future__ import annotations

import re
from itertools import chain

import numpy as np

from fabctl.mesh.io_common import ParsedMesh, check_facet_cap, fail, fan_triangulate, plural

# ---------------------------------------------------------------------------------------------- ASCII STL

_FACET = (
    b"facet", b"normal", None, None, None, b"outer", b"loop",
    b"vertex", None, None, None, b"vertex", None, None, None, b"vertex", None, None, None,
    b"endloop", b"endfacet",
)  # fmt: skip
_KW_COLS = [i for i, t in enumerate(_FACET) if t is not None]
_NUM_COLS = [i for i, t in enumerate(_FACET) if t is None]
_KW_ROW = np.array([t for t in _FACET if t is not None])
_STL_WORDS = {
    b"solid",
    b"endsolid",
    b"facet",
    b"normal",
    b"outer",
    b"loop",
    b"vertex",
    b"endloop",
    b"endfacet",
}
_MAX_TOKEN = 64


def read_ascii_stl(data: bytes, max_facets: int) -> ParsedMesh:
    """ASCII STL -> triangle soup: vertices (3m, 3) float64 corners, faces ``None``.

    Keywords are case-insensitive, any run of whitespace separates tokens, blank lines are allowed. Several
    ``solid`` blocks are merged (with a note); empty blocks are ignored.
    """
    text = data.lower()
    if text.startswith(b"\xef\xbb\xbf"):
        text = b"   " + text[3:]
    check_facet_cap(text.count(b"endfacet"), max_facets, "facet")
    parsed = _fast_ascii_stl(text)
    if parsed is None:
        _diagnose_ascii_stl(text)
        fail("malformed ASCII STL")
    return parsed


def _drop_solid_names(text: bytes) -> bytes:
    """Keep the ``solid``/``endsolid`` keyword of each such line and drop the rest (the name: free text).

    Finds the keyword with ``bytes.find`` (fast) and checks it starts its line; the loop runs once per
    occurrence of ``solid``, which in a valid file is once per block.
    """
    out, start, pos = [], 0, 0
    while (i := text.find(b"solid", pos)) >= 0:
        line_start = text.rfind(b"\n", 0, i) + 1
        kw = i - 3 if text[max(i - 3, 0) : i] == b"end" else i
        after = text[i + 5 : i + 6]
        if text[line_start:kw].strip() == b"" and (after == b"" or after.isspace()):
            line_end = text.find(b"\n", i)
            line_end = len(text) if line_end < 0 else line_end
            out.append(text[start : i + 5])
            start = pos = line_end
        else:
            pos = i + 5
    out.append(text[start:])
    return b"".join(out)


def _fast_ascii_stl(text: bytes) -> ParsedMesh | None:
    """The vectorised reader; ``None`` on any deviation from the grammar (the slow pass says where)."""
    body = _drop_solid_names(text)
    if b"_" in body:
        return None
    tokens = body.split()
    if not tokens or max(map(len, tokens)) > _MAX_TOKEN:
        return None
    tok = np.array(tokens)
    is_s, is_e = tok == b"solid", tok == b"endsolid"
    s, e = np.flatnonzero(is_s), np.flatnonzero(is_e)
    if len(s) == 0 or len(s) != len(e) or s[0] != 0 or e[-1] != len(tok) - 1:
        return None
    if np.any(s[1:] != e[:-1] + 1) or np.any(e <= s):
        return None
    sizes = e - s - 1
    if np.any(sizes % len(_FACET)):
        return None
    facets = tok[~(is_s | is_e)].reshape(-1, len(_FACET))
    if not (facets[:, _KW_COLS] == _KW_ROW).all():
        return None
    try:
        numbers = facets[:, _NUM_COLS].astype(np.float64)
    except ValueError:
        return None
    notes = []
    per_block = sizes // len(_FACET)
    empty = int(np.count_nonzero(per_block == 0))
    if len(s) - empty > 1:
        notes.append(f"{len(s) - empty} solid blocks merged into one mesh")
    if empty:
        notes.append(f"{plural(empty, 'empty solid block')} ignored")
    return ParsedMesh(vertices=np.ascontiguousarray(numbers[:, 3:]).reshape(-1, 3), faces=None, notes=notes)


def _said(word: bytes) -> str:
    """A keyword we found, quoted only if it is one of the grammar's words (never file text)."""
    return f"'{word.decode()}'" if word in _STL_WORDS else "other text"


def _numbers(lineno: int, toks: list[bytes], what: str, unit: str) -> None:
    if len(toks) != 3:
        fail(f"line {lineno}: {what} has {plural(len(toks), unit)}, expected 3")
    for i, t in enumerate(toks, 1):
        try:
            float(t)
        except ValueError:
            fail(f"line {lineno}: {unit} {i} of {what} is not a number")


def _diagnose_ascii_stl(text: bytes) -> None:
    """Walk the lines and raise ``MeshError`` at the first one that breaks the grammar."""
    state, corners, last, seen_solid = "outside", 0, 0, False
    for lineno, raw in enumerate(text.split(b"\n"), 1):
        toks = raw.split()
        if not toks:
            continue
        last = lineno
        kw = toks[0]
        if state == "outside":
            if kw != b"solid":
                fail(f"line {lineno}: expected 'solid', found {_said(kw)}")
            state, seen_solid = "solid", True
            continue
        if kw == b"endsolid" and state == "solid":
            state = "outside"
            continue
        if any(len(t) > _MAX_TOKEN for t in toks):
            fail(f"line {lineno}: a token is longer than {_MAX_TOKEN} characters")
        if b"_" in raw:
            fail(f"line {lineno}: '_' is not allowed in an ASCII STL number")
        if state == "solid":
            if kw != b"facet":
                fail(f"line {lineno}: expected 'facet' or 'endsolid', found {_said(kw)}")
            if len(toks) < 2 or toks[1] != b"normal":
                fail(f"line {lineno}: expected 'facet normal'")
            _numbers(lineno, toks[2:], "facet normal", "component")
            state = "facet"
        elif state == "facet":
            if toks != [b"outer", b"loop"]:
                fail(f"line {lineno}: expected 'outer loop', found {_said(kw)}")
            state, corners = "loop", 0
        elif state == "loop":
            if kw == b"vertex":
                _numbers(lineno, toks[1:], "vertex", "coordinate")
                corners += 1
                if corners > 3:
                    fail(f"line {lineno}: loop has more than 3 vertices")
            elif kw == b"endloop" and len(toks) == 1:
                if corners != 3:
                    fail(f"line {lineno}: loop has {plural(corners, 'vertex', 'vertices')}, expected 3")
                state = "endloop"
            else:
                fail(f"line {lineno}: expected 'vertex' or 'endloop', found {_said(kw)}")
        elif toks != [b"endfacet"]:
            fail(f"line {lineno}: expected 'endfacet', found {_said(kw)}")
        else:
            state = "solid"
    if not seen_solid:
        fail("ASCII STL has no 'solid' line (empty)")
    if state != "outside":
        fail(f"line {last}: file ends inside a solid block (missing 'endsolid')")


# ---------------------------------------------------------------------------------------------------- OBJ

_OBJ_IGNORED = {
    b"vt", b"vn", b"vp", b"o", b"g", b"s", b"mg", b"usemtl", b"mtllib", b"maplib", b"usemap", b"lod",
    b"shadow_obj", b"trace_obj", b"bevel", b"c_interp", b"d_interp", b"ctech", b"stech",
}  # fmt: skip
_OBJ_NO_SURFACE = {b"l", b"p"}
_OBJ_REFUSED = {
    b"cstype": "free-form curves and surfaces", b"deg": "free-form curves and surfaces",
    b"bmat": "free-form curves and surfaces", b"step": "free-form curves and surfaces",
    b"curv": "free-form curves and surfaces", b"curv2": "free-form curves and surfaces",
    b"surf": "free-form curves and surfaces", b"parm": "free-form curves and surfaces",
    b"trim": "free-form curves and surfaces", b"hole": "free-form curves and surfaces",
    b"scrv": "free-form curves and surfaces", b"sp": "free-form curves and surfaces",
    b"end": "free-form curves and surfaces", b"con": "free-form curves and surfaces",
    b"call": "'call' of another file", b"csh": "'csh' commands",
}  # fmt: skip


def _first_bad_number(rows: list[list[bytes]], lines: np.ndarray, conv: type, what: str) -> None:
    """Raise at the first row (error path only) whose tokens ``conv`` cannot read."""
    for row, line in zip(rows, lines.tolist(), strict=True):
        for i, t in enumerate(row, 1):
            try:
                conv(t)
            except ValueError:
                fail(f"line {line + 1}: {what} {i} is not a {'number' if conv is float else 'whole number'}")
    fail(f"a {what} is not a number")


def _float_rows(rows: list[list[bytes]], lines: np.ndarray, what: str) -> np.ndarray:
    """(k,) rows of >= 3 byte tokens -> (k, 3) float64 from their first three."""
    if not rows:
        return np.zeros((0, 3), dtype=np.float64)
    first3 = [r[:3] for r in rows]
    try:
        return np.array(first3, dtype=bytes).astype(np.float64)
    except ValueError:
        _first_bad_number(first3, lines, float, what)
        raise  # unreachable: the line above raises


def read_obj(data: bytes, max_facets: int) -> ParsedMesh:
    """Wavefront OBJ -> vertices (n, 3) float64, faces (m, 3) int64 (polygons fan-triangulated).

    Reads ``v`` and ``f`` (``f 1 2 3``, ``1/2``, ``1//3``, ``1/2/3``, negative = relative); ignores texture,
    normal, group, material and smoothing statements and comments; refuses free-form geometry.
    """
    if b"\x00" in data:
        fail("OBJ file holds binary data (NUL bytes)")
    check_facet_cap(
        data.count(b"\nf ") + data.startswith(b"f "), max_facets
    )  # a lower bound, before splitting
    lines = data.split(b"\n")
    parts = [ln.split(None, 1) for ln in lines]
    kw = np.array([p[0] if p else b"" for p in parts], dtype=object)
    is_v, is_f = kw == b"v", kw == b"f"
    notes, unknown, no_surface = [], 0, 0
    for word in set(kw[~(is_v | is_f)].tolist()):  # the distinct other keywords: a handful
        if word == b"" or word.startswith(b"#") or word in _OBJ_IGNORED:
            continue
        count = int(np.count_nonzero(kw == word))
        if word in _OBJ_REFUSED:
            line = int(np.flatnonzero(kw == word)[0]) + 1
            fail(f"line {line}: {_OBJ_REFUSED[word]} are not supported")
        if word in _OBJ_NO_SURFACE:
            no_surface += count
        else:
            unknown += count
    if no_surface:
        notes.append(f"{plural(no_surface, 'point or line statement')} (no surface) ignored")
    if unknown:
        notes.append(f"{plural(unknown, 'line')} with unrecognised statements ignored")

    v_idx = np.flatnonzero(is_v)
    v_rows = [parts[i][1].split() if len(parts[i]) > 1 else [] for i in v_idx.tolist()]
    v_len = np.fromiter(map(len, v_rows), dtype=np.int64, count=len(v_rows))
    bad = np.flatnonzero(~np.isin(v_len, (3, 4, 6, 7)))
    if len(bad):
        fail(f"line {v_idx[bad[0]] + 1}: vertex has {plural(int(v_len[bad[0]]), 'number')}, expected 3")
    vertices = _float_rows(v_rows, v_idx, "vertex coordinate")

    f_idx = np.flatnonzero(is_f)
    if len(f_idx) == 0:
        fail("OBJ file has no faces (empty)")
    rest = [parts[i][1] if len(parts[i]) > 1 else b"" for i in f_idx.tolist()]
    joined = b"\n".join(rest)
    if b"\\" in joined:
        line = f_idx[next(i for i, r in enumerate(rest) if b"\\" in r)] + 1
        fail(f"line {line}: line continuation ('\\') is not supported")
    f_rows = [r.split() for r in re.sub(rb"/[^\s]*", b"", joined).split(b"\n")]
    counts = np.fromiter(map(len, f_rows), dtype=np.int64, count=len(f_rows))
    bad = np.flatnonzero(counts < 3)
    if len(bad):
        fail(f"line {f_idx[bad[0]] + 1}: face has {plural(int(counts[bad[0]]), 'vertex', 'vertices')}, "
             "expected at least 3")  # fmt: skip
    check_facet_cap(int((counts - 2).sum()), max_facets)
    try:
        flat = np.array(list(chain.from_iterable(f_rows)), dtype=bytes).astype(np.int64)
    except (ValueError, OverflowError):
        _first_bad_number(f_rows, f_idx, int, "face vertex index")
        raise
    before = np.repeat(np.searchsorted(v_idx, f_idx), counts)  # vertices defined before each corner
    resolved = np.where(flat < 0, before + flat, flat - 1)
    nv = len(vertices)
    bad = np.flatnonzero((flat == 0) | (resolved < 0) | (resolved >= nv))
    if len(bad):
        line = int(np.repeat(f_idx, counts)[bad[0]]) + 1
        fail(f"line {line}: face refers to vertex {int(flat[bad[0]])}, the file has "
             f"{plural(nv, 'vertex', 'vertices')} (OBJ counts from 1)")  # fmt: skip
    return ParsedMesh(vertices=vertices, faces=fan_triangulate(counts, resolved), notes=notes)


# ---------------------------------------------------------------------------------------------------- OFF

_OFF_WORD = re.compile(rb"(ST)?(C)?(N)?(4)?(n)?OFF")


def read_off(data: bytes, max_facets: int) -> ParsedMesh:
    """OFF (Object File Format, ASCII) -> vertices (n, 3) float64, faces (m, 3) int64.

    One record per line; vertex colours/normals/texture coordinates and face colours are skipped;
    polygons are fan-triangulated. Binary and non-3D OFF are refused.
    """
    if b"\x00" in data:
        fail("binary OFF is not supported")
    toks = [ln.split(b"#", 1)[0].split() for ln in data.split(b"\n")]
    content = np.flatnonzero(np.fromiter(map(len, toks), dtype=np.int64, count=len(toks)) > 0)
    if len(content) == 0:
        fail("OFF file is empty")
    head = toks[content[0]]
    word = _OFF_WORD.fullmatch(head[0])
    if word is None:
        fail(f"line {content[0] + 1}: expected an OFF header")
    if word.group(4) or word.group(5):
        fail(f"line {content[0] + 1}: only 3-dimensional OFF is supported")
    if len(head) > 1 and head[1].upper() == b"BINARY":
        fail("binary OFF is not supported")
    pos, count_line = (1, content[0]) if len(head) > 1 else (2, content[1] if len(content) > 1 else -1)
    count_toks = head[1:] if len(head) > 1 else (toks[count_line] if count_line >= 0 else [])
    try:
        nv, nf = int(count_toks[0]), int(count_toks[1])
    except (ValueError, IndexError):
        fail(f"line {count_line + 1}: expected the vertex and face counts")
    if nv < 0 or nf < 0:
        fail(f"line {count_line + 1}: negative vertex or face count")
    check_facet_cap(nf, max_facets, "face")
    have = len(content) - pos
    if nv + nf > have:
        fail(f"file declares {nv} vertices and {nf} faces but has only {have} more lines (truncated)")
    v_lines, f_lines = content[pos : pos + nv], content[pos + nv : pos + nv + nf]
    v_rows = [toks[i] for i in v_lines.tolist()]
    v_len = np.fromiter(map(len, v_rows), dtype=np.int64, count=nv)
    bad = np.flatnonzero(v_len < 3)
    if len(bad):
        fail(f"line {v_lines[bad[0]] + 1}: vertex has {plural(int(v_len[bad[0]]), 'number')}, expected 3")
    vertices = _float_rows(v_rows, v_lines, "vertex coordinate")
    if nf == 0:
        fail("OFF file has no faces (empty)")
    f_rows = [toks[i] for i in f_lines.tolist()]
    try:
        counts = np.array([r[0] for r in f_rows], dtype=bytes).astype(np.int64)
    except (ValueError, OverflowError):
        _first_bad_number([r[:1] for r in f_rows], f_lines, int, "face vertex count")
        raise
    f_len = np.fromiter(map(len, f_rows), dtype=np.int64, count=nf)
    bad = np.flatnonzero((counts < 3) | (f_len < counts + 1))
    if len(bad):
        k = bad[0]
        what = "fewer than 3 vertices" if counts[k] < 3 else "fewer indices than it declares"
        fail(f"line {f_lines[k] + 1}: face has {what}")
    check_facet_cap(int((counts - 2).sum()), max_facets)
    idx_rows = [r[1 : 1 + c] for r, c in zip(f_rows, counts.tolist(), strict=True)]
    try:
        flat = np.array(list(chain.from_iterable(idx_rows)), dtype=bytes).astype(np.int64)
    except (ValueError, OverflowError):
        _first_bad_number(idx_rows, f_lines, int, "face vertex index")
        raise
    bad = np.flatnonzero((flat < 0) | (flat >= nv))
    if len(bad):
        line = int(np.repeat(f_lines, counts)[bad[0]]) + 1
        fail(f"line {line}: face refers to vertex {int(flat[bad[0]])}, the file has "
             f"{plural(nv, 'vertex', 'vertices')} (OFF counts from 0)")  # fmt: skip
    notes = []
    extra = have - nv - nf
    if extra:
        notes.append(f"{plural(extra, 'line')} after the last face ignored")
    return ParsedMesh(vertices=vertices, faces=fan_triangulate(counts, flat), notes=notes)
