"""Mesh intake (fabctl.mesh.io): every corpus file, unit rules, limits, the scrubbed design copy.

Expected triangle counts come from shared/data/metrics.json (trimesh 5.2.0) except where trimesh is wrong,
which is said next to the number.
"""

from __future__ import annotations

import hashlib
import io
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fabctl.errors import MeshError, UnitsError
from fabctl.mesh import io_3mf
from fabctl.mesh.io import (
    DEFAULT_MAX_FACETS,
    DESIGN_COPY_HEADER,
    read_mesh,
    read_mesh_bytes,
    sniff_format,
    write_design_copy,
)
from fabctl.mesh.io_common import fan_triangulate, merge_exact

DATA = Path(__file__).resolve().parents[2] / "data"
CORPUS = DATA / "corpus"
PROXIES = DATA / "proxies"

# file -> (triangles, extents or None, a word every note list must contain or None)
LOADS = {
    "3mf-samples/MUSTPASS_Chapter3.2c_MultipleItemsTransform.3mf": (60, (70, 60, 30), None),
    # 484 in metrics.json counts the 80-triangle support object, which intake drops
    "3mf-samples/MUSTPASS_Chapter4.1_ExplicitSupport.3mf": (404, (80, 10, 40), "support"),
    "assimp/Spider_binary.stl": (1368, None, None),
    # metrics.json says 16 triangles, 30 x 10 x 10: trimesh resolves both parts' objectid 1 to one object.
    # Per-part scoping gives a 10 mm tetrahedron and a 5 mm one at x = 20 (assimp expects 2 meshes).
    "assimp/production_components.3mf": (8, (25, 10, 10), None),
    "assimp/sphereWithHole.stl": (285, (3, 3, 3), None),
    "assimp/triangle_with_empty_solid.stl": (1, (2, 2, 0), "empty solid"),
    "microstl/crazy_whitespace_ascii.stl": (1, (0, 1, 1), None),
    "microstl/misleading_binary_header.stl": (1, (0, 1, 1), "solid"),
    "numpy-stl/CubeInvalidUnicode.stl": (12, (2, 2, 2), None),
    # trimesh loads nothing here (size check fails, ASCII fallback finds nothing)
    "numpy-stl/HalfDonut_binary_trailing_byte.stl": (288, None, "1 trailing byte after 288 facets ignored"),
    "numpy-stl/rear_case.stl": (18808, None, None),
    "trimesh/P_XPM_0331_01.3mf": (6, (100, 100, 100), None),
    "trimesh/br2.off": (36, (2, 2, 2), None),
    "trimesh/cone.off": (40, (1, 1, 1), None),
    "trimesh/joined_tetrahedra.obj": (8, None, None),
    "trimesh/large_block_obb.STL": (12, None, None),
    "trimesh/octagonal_pocket.stl": (3262, None, None),
    "trimesh/shared.STL": (24, (2, 2, 1), None),
    "trimesh/tref.off": (640, None, None),
    "trimesh/two_objects_mixed_case_names.stl": (24, (6, 1, 1), "2 solid blocks merged"),
    "trimesh/unitcube.off": (12, (1, 1, 1), None),
}

# file -> (error class, words the one-line message must contain)
REFUSES = {
    "3mf-samples/MUSTFAIL_Chapter2.3.2a_NonUTF_Encoding.3mf": (MeshError, ("UTF-8",)),
    "assimp/malformed_property_index_oob.3mf": (MeshError, ("object 1 triangle 0", "property index 1000000")),
    "microstl/empty_file.stl": (MeshError, ("empty", "0 bytes")),
    "microstl/incomplete_binary.stl": (MeshError, ("truncated", "12 facets", "5 whole facets")),
    "microstl/incomplete_normal_ascii.stl": (MeshError, ("line 2", "facet normal has 1 component")),
    "microstl/incomplete_vertex_ascii.stl": (MeshError, ("line 6", "vertex has 2 coordinates, expected 3")),
    "trimesh/empty.stl": (MeshError, ("empty",)),
    "trimesh/stl_empty_bin.stl": (MeshError, ("empty",)),
}

# free text inside corpus files that must never reach a note or message
FREE_TEXT = ("minimal", "min \t imal", "cubeexportedfromcad", "test.stl", "pro2stl", "copyright",
             "consortium", "testtriangle", "emptysolid", "blender", "mesh-mesh", "license", "do not modify")  # fmt: skip


def stl_bytes(tris: np.ndarray, header: bytes = b"", count: int | None = None, tail: bytes = b"") -> bytes:
    """tris (m, 3, 3) -> binary STL bytes with the given header, count and trailing bytes."""
    tris = np.asarray(tris, dtype="<f4").reshape(-1, 9)
    rec = np.zeros(len(tris), dtype=[("n", "<f4", 3), ("v", "<f4", 9), ("a", "<u2")])
    rec["v"] = tris
    n = len(tris) if count is None else count
    return header.ljust(80, b" ")[:80] + np.uint32(n).astype("<u4").tobytes() + rec.tobytes() + tail


def box_tris(size: float = 20.0) -> np.ndarray:
    """(12, 3, 3) float64 triangles of an axis-aligned cube with side ``size``."""
    b = trimesh.creation.box(extents=(size, size, size))
    return b.vertices[b.faces] + size / 2


def bodies(mesh) -> int:
    f = mesh.faces
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    n = len(mesh.vertices)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[0]


def assert_one_line(err: pytest.ExceptionInfo, name: str, *words: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{name}: "), msg
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)
    body = msg[len(name) + 2 :].lower()
    assert not any(t in body for t in FREE_TEXT), msg


# ------------------------------------------------------------------------------------------ the corpus


def test_every_corpus_file_is_covered():
    files = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".md"}
    assert files == set(LOADS) | set(REFUSES)


@pytest.mark.parametrize("rel", sorted(LOADS))
def test_corpus_file_loads(rel):
    triangles, extents, note_word = LOADS[rel]
    mesh = read_mesh(CORPUS / rel, units="mm", check_extent=False)
    assert len(mesh.faces) == triangles
    assert mesh.vertices.shape[1] == 3 and mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.vertices)
    assert len(np.unique(mesh.vertices, axis=0)) == len(mesh.vertices)  # merged exactly
    if extents is not None:
        np.testing.assert_allclose(mesh.extents_mm, extents, atol=1e-4)
    if note_word is not None:
        assert any(note_word in n for n in mesh.notes), mesh.notes
    for note in mesh.notes:
        assert not any(t in note.lower() for t in FREE_TEXT), note
    assert mesh.source_sha256 == hashlib.sha256((CORPUS / rel).read_bytes()).hexdigest()


@pytest.mark.parametrize("rel", sorted(REFUSES))
def test_corpus_file_refused(rel):
    cls, words = REFUSES[rel]
    with pytest.raises(cls) as err:
        read_mesh(CORPUS / rel, units="mm", check_extent=False)
    assert type(err.value) is cls
    assert_one_line(err, Path(rel).name, *words)


def test_production_components_are_two_bodies_scoped_per_part():
    mesh = read_mesh(CORPUS / "assimp/production_components.3mf")
    assert bodies(mesh) == 2
    assert mesh.units == "mm" and mesh.units_source == "file"


def test_multiple_items_transform_applies_build_transforms():
    mesh = read_mesh(CORPUS / "3mf-samples/MUSTPASS_Chapter3.2c_MultipleItemsTransform.3mf")
    np.testing.assert_allclose(mesh.bounds_mm, [[0, 0, 0], [70, 60, 30]], atol=1e-4)
    assert bodies(mesh) == 2


def test_binary_stl_keeps_face_order_and_winding():
    path = CORPUS / "numpy-stl/rear_case.stl"
    rec = np.frombuffer(path.read_bytes(), dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")],
                        count=18808, offset=84)  # fmt: skip
    mesh = read_mesh(path, units="mm")
    np.testing.assert_array_equal(mesh.triangles, rec["v"].astype(np.float64))


@pytest.mark.parametrize("rel", ["microstl_stencil_binary.stl", "trimesh_plate_holes.STL"])
def test_proxies_load(rel):
    mesh = read_mesh(PROXIES / rel, units="mm", check_extent=False)
    assert len(mesh.faces) == {"microstl_stencil_binary.stl": 2330, "trimesh_plate_holes.STL": 1252}[rel]


def test_sniffing():
    assert (
        sniff_format("x.stl", (CORPUS / "microstl/misleading_binary_header.stl").read_bytes()) == "stl-binary"
    )
    assert sniff_format("x.stl", (CORPUS / "numpy-stl/CubeInvalidUnicode.stl").read_bytes()) == "stl-binary"
    assert sniff_format("x.stl", (CORPUS / "microstl/crazy_whitespace_ascii.stl").read_bytes()) == "stl-ascii"
    assert sniff_format("x.bin", (CORPUS / "trimesh/cone.off").read_bytes()) == "off"
    with pytest.raises(MeshError, match="not a recognised mesh format"):
        sniff_format("notes.txt", b"\x00\x01\x02 hello")


# --------------------------------------------------------------------------------- binary STL edge cases


def test_nan_coordinates_named_with_count_and_first_facet():
    tris = np.repeat(box_tris()[None, 0], 5, axis=0)
    tris[2, 1, 0] = np.nan
    tris[4, 0, 2] = np.inf
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(stl_bytes(tris), name="nan.stl", units="mm", check_extent=False)
    assert_one_line(err, "nan.stl", "2 facets have NaN or infinite", "first: facet 2")


def test_lying_facet_count_is_refused_before_allocating():
    data = stl_bytes(box_tris()[:2], count=2**31 - 1)
    assert len(data) == 184
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(data, name="liar.stl", units="mm")
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert_one_line(err, "liar.stl", "truncated", "2147483647 facets", "2 whole facets")
    assert elapsed < 0.5 and peak < 5_000_000


def test_facet_cap_refused_before_allocating():
    data = stl_bytes(box_tris())
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(data, name="big.stl", units="mm", max_facets=11)
    assert_one_line(err, "big.stl", "facet count 12 exceeds the limit of 11")
    assert len(read_mesh_bytes(data, name="big.stl", units="mm", max_facets=12).faces) == 12
    assert DEFAULT_MAX_FACETS >= 10_000_000


def test_file_size_cap(tmp_path):
    path = tmp_path / "huge.stl"
    path.write_bytes(stl_bytes(box_tris()) + b"\0" * 2_000_000)
    with pytest.raises(MeshError, match="more than a 10-triangle mesh needs"):
        read_mesh(path, units="mm", max_facets=10)


def test_extra_whole_facet_and_trailing_bytes():
    tris = box_tris()
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(stl_bytes(tris, count=11), name="x.stl", units="mm")
    assert_one_line(err, "x.stl", "size disagrees with facet count: header says 11, file holds 12")
    mesh = read_mesh_bytes(stl_bytes(tris, tail=b"\0" * 49), name="x.stl", units="mm")
    assert "49 trailing bytes after 12 facets ignored" in mesh.notes
    with pytest.raises(MeshError, match="size disagrees"):
        read_mesh_bytes(stl_bytes(tris, tail=b"\0" * 50), name="x.stl", units="mm")
    with pytest.raises(MeshError, match="header says 0, file holds 12"):
        read_mesh_bytes(stl_bytes(tris, count=0), name="x.stl", units="mm")
    with pytest.raises(MeshError, match="shorter than the 84-byte"):
        read_mesh_bytes(b"\1" * 40, "stl-binary", name="x.stl", units="mm")


def test_attribute_bytes_and_solid_header_noted_without_echoing_header():
    data = bytearray(stl_bytes(box_tris(), header=b"solid Patient Name 1970-01-01"))
    data[84 + 48] = 7  # attribute bytes of facet 0
    mesh = read_mesh_bytes(bytes(data), name="x.stl", units="mm")
    text = " ".join(mesh.notes)
    assert "1 facet carry attribute bytes" in text and "header starts with 'solid'" in text
    assert "patient" not in text.lower() and "1970" not in text


# -------------------------------------------------------------------------------------------- ASCII STL

ASCII_OK = b"""solid part
facet normal 0 0 1
outer loop
vertex 0 0 0
vertex 10 0 0
vertex 0 10 0
endloop
endfacet
endsolid part
"""


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            ASCII_OK.replace(b"vertex 10 0 0", b"vertex 10 0 x"),
            ("line 5", "coordinate 3 of vertex is not a number"),
        ),
        (ASCII_OK.replace(b"endsolid part\n", b""), ("line 8", "missing 'endsolid'")),
        (ASCII_OK.replace(b"outer loop", b"outer"), ("line 3", "expected 'outer loop'")),
        (ASCII_OK.replace(b"vertex 0 10 0\n", b""), ("line 6", "loop has 2 vertices, expected 3")),
        (ASCII_OK.replace(b"endfacet", b"endfacet extra"), ("line 8", "expected 'endfacet'")),
        (ASCII_OK.replace(b"vertex 0 0 0", b"vertex 0 0 1_0"), ("line 4", "'_'")),
        (b"solid\nendsolid\n", ("empty",)),
        (ASCII_OK + b"solid again\nfacet normal 0 0 1\n", ("line 11", "missing 'endsolid'")),
    ],
)
def test_ascii_stl_syntax_errors_name_the_line(text, words):
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(text, name="a.stl", units="mm", check_extent=False)
    assert_one_line(err, "a.stl", *words)


def test_ascii_stl_uppercase_crlf_tabs_and_facet_cap():
    text = ASCII_OK.upper().replace(b"\n", b"\r\n").replace(b" ", b" \t ")
    mesh = read_mesh_bytes(text, name="a.stl", units="mm")
    np.testing.assert_array_equal(mesh.triangles[0], [[0, 0, 0], [10, 0, 0], [0, 10, 0]])
    with pytest.raises(MeshError, match="exceeds the limit of 0"):
        read_mesh_bytes(ASCII_OK, name="a.stl", units="mm", max_facets=0)


# ------------------------------------------------------------------------------------------------ units


def test_stl_without_units_is_refused():
    with pytest.raises(UnitsError) as err:
        read_mesh(CORPUS / "numpy-stl/rear_case.stl")
    assert_one_line(err, "rear_case.stl", "has no unit; pass --units mm|cm|m|in")


def test_3mf_unit_is_honoured_and_disagreement_refused():
    path = CORPUS / "3mf-samples/MUSTPASS_Chapter3.2c_MultipleItemsTransform.3mf"
    mesh = read_mesh(path)
    assert (mesh.units, mesh.units_source) == ("mm", "file")
    assert read_mesh(path, units="mm").units_source == "file"
    with pytest.raises(UnitsError) as err:
        read_mesh(path, units="cm")
    assert_one_line(err, path.name, "states its unit as mm", "cm was declared")


def test_3mf_in_inches_is_converted():
    data = make_3mf(VERTS, TRIS, unit="inch")
    mesh = read_mesh_bytes(data, name="in.3mf")
    assert mesh.units == "in"
    np.testing.assert_allclose(mesh.extents_mm, [254, 254, 254])


def test_metre_file_read_as_mm_is_refused_with_a_hint():
    path = CORPUS / "trimesh/octagonal_pocket.stl"
    with pytest.raises(UnitsError) as err:
        read_mesh(path, units="mm")
    assert_one_line(err, path.name, "outside the plausible range")
    assert "--units m" in err.value.hint
    mesh = read_mesh(path, units="m")
    np.testing.assert_allclose(mesh.extents_mm, [228.6, 164.7, 15.9], atol=0.1)
    assert (mesh.units, mesh.units_source) == ("m", "declared")


def test_inches_declared():
    data = stl_bytes(box_tris(4.0))
    mesh = read_mesh_bytes(data, name="cube.stl", units="in")
    np.testing.assert_allclose(mesh.extents_mm, [101.6] * 3, rtol=1e-6)
    with pytest.raises(UnitsError) as err:
        read_mesh_bytes(data, name="cube.stl", units="mm")
    assert "--units" in err.value.hint
    with pytest.raises(UnitsError, match="unknown unit"):
        read_mesh_bytes(data, name="cube.stl", units="furlong")


# ------------------------------------------------------------------------------ design copy and MeshInput


@pytest.mark.parametrize(
    ("rel", "units"),
    [
        ("numpy-stl/rear_case.stl", "mm"),
        ("numpy-stl/CubeInvalidUnicode.stl", "cm"),
        ("numpy-stl/HalfDonut_binary_trailing_byte.stl", "cm"),
        ("3mf-samples/MUSTPASS_Chapter3.2c_MultipleItemsTransform.3mf", None),
        ("trimesh/unitcube.off", "in"),
    ],
)
def test_design_copy_round_trips_and_is_scrubbed(tmp_path, rel, units):
    src = CORPUS / rel
    mesh = read_mesh(src, units=units, check_extent=False)
    copy = tmp_path / "design.stl"
    sha = write_design_copy(mesh, copy)
    blob = copy.read_bytes()
    assert sha == hashlib.sha256(blob).hexdigest()
    assert blob[:80] == DESIGN_COPY_HEADER == b"fabctl design copy".ljust(80)
    assert len(blob) == 84 + 50 * len(mesh.faces)
    rec = np.frombuffer(blob, dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")], offset=84)
    assert not rec["a"].any()
    if src.suffix.lower() == ".stl":
        assert src.read_bytes()[:80].strip(b" \0") not in blob
    back = read_mesh(copy, units="mm", check_extent=False)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    np.testing.assert_array_equal(back.vertices, mesh.vertices.astype(np.float32).astype(np.float64))
    assert back.notes == ()


def test_mesh_input_arrays_are_read_only():
    mesh = read_mesh(CORPUS / "trimesh/shared.STL", units="mm", check_extent=False)
    assert not mesh.vertices.flags.writeable and not mesh.faces.flags.writeable
    with pytest.raises(ValueError):
        mesh.vertices[0, 0] = 1.0
    with pytest.raises(ValueError):
        mesh.faces[0, 0] = 1


def test_unreadable_path(tmp_path):
    with pytest.raises(MeshError, match="missing.stl: no such file"):
        read_mesh(tmp_path / "missing.stl", units="mm")
    with pytest.raises(MeshError, match="is a directory"):
        read_mesh(tmp_path, units="mm")


# --------------------------------------------------------------------------------------------------- 3MF

VERTS = [(0, 0, 0), (10, 0, 0), (0, 10, 0), (0, 0, 10)]
TRIS = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
CORE_NS = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
    '2006/relationships"><Relationship Target="/3D/3dmodel.model" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>'
)


def model_xml(verts, tris, unit="millimeter", items='<item objectid="1"/>', extra_attrs="", resources="",
              tri_attrs="", head="", obj_attrs="") -> str:  # fmt: skip
    v = "".join(f'<vertex x="{x}" y="{y}" z="{z}"/>' for x, y, z in verts)
    t = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}" {tri_attrs}/>' for a, b, c in tris)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{head}<model unit="{unit}" xmlns="{CORE_NS}" {extra_attrs}>'
        f'<resources>{resources}<object id="1" type="model" {obj_attrs}><mesh><vertices>{v}</vertices>'
        f"<triangles>{t}</triangles></mesh></object></resources><build>{items}</build></model>"
    )


def make_3mf(verts, tris, parts: dict[str, str] | None = None, **kw) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("_rels/.rels", RELS)
        zf.writestr("3D/3dmodel.model", model_xml(verts, tris, **kw))
        for name, text in (parts or {}).items():
            zf.writestr(name, text)
    return buf.getvalue()


def test_3mf_out_of_range_vertex_index():
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(make_3mf(VERTS, [*TRIS, (0, 1, 9)]), name="v.3mf")
    assert_one_line(err, "v.3mf", "object 1 triangle 4 refers to vertex 9, the object has 4 vertices")


def test_3mf_property_group_missing_and_valid():
    with pytest.raises(MeshError, match="refers to property group 5, which does not exist"):
        read_mesh_bytes(make_3mf(VERTS, TRIS, tri_attrs='pid="5" p1="0"'), name="p.3mf")
    group = '<basematerials id="5"><base name="a" displaycolor="#FF0000"/><base name="b" displaycolor="#00FF00"/></basematerials>'
    mesh = read_mesh_bytes(make_3mf(VERTS, TRIS, tri_attrs='pid="5" p1="1"', resources=group), name="p.3mf")
    assert len(mesh.faces) == 4 and "3MF colour and material properties ignored" in mesh.notes
    with pytest.raises(MeshError, match="property index 2, the property group has 2"):
        read_mesh_bytes(
            make_3mf(VERTS, TRIS, tri_attrs='pid="5" p1="0" p3="2"', resources=group), name="p.3mf"
        )


def test_3mf_zip_bomb_and_bad_zip(monkeypatch):
    monkeypatch.setattr(io_3mf, "MAX_MODEL_PART_BYTES", 2000)
    big = make_3mf(VERTS * 20, TRIS)
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(big, name="bomb.3mf")
    assert_one_line(err, "bomb.3mf", "limit")
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(b"PK\x03\x04" + b"\x00" * 100, name="bad.3mf")
    assert_one_line(err, "bad.3mf", "not a readable zip")


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"head": '<!DOCTYPE model [<!ENTITY a "b">]>'}, ("DOCTYPE",)),
        (
            {
                "extra_attrs": 'xmlns:b="http://schemas.microsoft.com/3dmanufacturing/beamlattice/2017/02" '
                'requiredextensions="b"'
            },
            ("beam lattice",),
        ),  # fmt: skip
        ({"items": '<item objectid="7"/>'}, ("object 7, which does not exist",)),
        ({"items": ""}, ("no items",)),
        ({"unit": "parsec"}, ("unknown unit",)),
        ({"items": '<item objectid="1" transform="1 0 0"/>'}, ("12 finite numbers",)),
        ({"obj_attrs": 'pid="3"'}, ("property group 3",)),
    ],
)
def test_3mf_refusals(kw, words):
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(make_3mf(VERTS, TRIS, **kw), name="r.3mf")
    assert_one_line(err, "r.3mf", *words)


def test_3mf_malformed_xml_and_no_rels():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("_rels/.rels", RELS)
        zf.writestr("3D/3dmodel.model", f'<model xmlns="{CORE_NS}"><resources></model>')
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(buf.getvalue(), name="x.3mf")
    assert_one_line(err, "x.3mf", "malformed XML", "line 1")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("3D/3dmodel.model", model_xml(VERTS, TRIS))
    with pytest.raises(MeshError, match=r"no _rels/\.rels"):
        read_mesh_bytes(buf.getvalue(), name="x.3mf")


def test_3mf_mirroring_transform_reverses_winding():
    plain = read_mesh_bytes(make_3mf(VERTS, TRIS), name="m.3mf")
    mirror = read_mesh_bytes(make_3mf(VERTS, TRIS, items='<item objectid="1" transform="-1 0 0 0 1 0 0 0 1 0 0 0"/>'),
                             name="m.3mf")  # fmt: skip
    assert any("mirrors" in n for n in mirror.notes)
    vol = lambda m: m.to_trimesh().volume  # noqa: E731
    assert vol(plain) > 0 and np.isclose(vol(mirror), vol(plain))


def test_3mf_component_cycle_refused():
    comps = (
        '<object id="2" type="model"><components><component objectid="3"/></components></object>'
        '<object id="3" type="model"><components><component objectid="2"/></components></object>'
    )
    with pytest.raises(MeshError, match="nest deeper"):
        read_mesh_bytes(make_3mf(VERTS, TRIS, resources=comps, items='<item objectid="2"/>'), name="c.3mf")


# -------------------------------------------------------------------------------------- OBJ, PLY, OFF


def test_obj_polygons_negative_indices_and_seams():
    text = b"""# comment with a Name
mtllib x.mtl
o thing
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
vt 0 0
vn 0 0 1
g grp
usemtl m
s 1
f 1/1/1 2/1/1 3/1/1 4/1/1
v 0 0 0
f -1 -2 -3
"""
    mesh = read_mesh_bytes(text, name="q.obj", units="mm", check_extent=False)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3], [0, 3, 2]])
    assert "1 vertex at duplicate positions merged" in mesh.notes
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(text + b"f 1 2 99\n", name="q.obj", units="mm")
    assert_one_line(err, "q.obj", "line 16", "refers to vertex 99, the file has 5 vertices")
    with pytest.raises(MeshError, match="line 16: face has 2 vertices"):
        read_mesh_bytes(text + b"f 1 2\n", name="q.obj", units="mm")
    with pytest.raises(MeshError, match="line 16: vertex coordinate 2 is not a number"):
        read_mesh_bytes(text + b"v 1 x 2\n", name="q.obj", units="mm")
    with pytest.raises(MeshError, match="line 16: free-form"):
        read_mesh_bytes(text + b"curv 0 1 1 2\n", name="q.obj", units="mm")
    with pytest.raises(MeshError, match="exceeds the limit of 2"):
        read_mesh_bytes(text, name="q.obj", units="mm", max_facets=2)
    with pytest.raises(MeshError, match="no faces"):
        read_mesh_bytes(b"v 0 0 0\nv 1 0 0\n", name="p.obj", units="mm")


@pytest.mark.parametrize("encoding", ["ascii", "binary", "binary_big"])
def test_ply_against_trimesh_export(encoding):
    src = trimesh.creation.icosphere(subdivisions=2, radius=20)
    data = trimesh.exchange.ply.export_ply(src, encoding="ascii" if encoding == "ascii" else "binary")
    if encoding == "binary_big":
        data = big_endian_ply(src)
    mesh = read_mesh_bytes(data, name="s.ply", units="mm")
    np.testing.assert_allclose(mesh.triangles, src.vertices[src.faces], atol=1e-5)


def big_endian_ply(src) -> bytes:
    head = (
        f"ply\nformat binary_big_endian 1.0\ncomment made by a test\nelement vertex {len(src.vertices)}\n"
        "property float x\nproperty float y\nproperty float z\nproperty uchar red\n"
        f"element face {len(src.faces)}\nproperty uchar flags\nproperty list uchar int vertex_indices\n"
        "end_header\n"
    ).encode()
    v = np.zeros(len(src.vertices), dtype=[("p", ">f4", 3), ("r", "u1")])
    v["p"] = src.vertices
    f = np.zeros(len(src.faces), dtype=[("flags", "u1"), ("n", "u1"), ("i", ">i4", 3)])
    f["n"], f["i"] = 3, src.faces
    return head + v.tobytes() + f.tobytes()


def test_ply_mixed_polygons_and_errors():
    head = (b"ply\nformat ascii 1.0\nelement vertex 5\nproperty double x\nproperty double y\nproperty double z\n"
            b"element face 2\nproperty list uchar int vertex_indices\nend_header\n")  # fmt: skip
    body = b"0 0 0\n10 0 0\n10 10 0\n0 10 0\n5 5 5\n4 0 1 2 3\n3 0 1 4\n"
    mesh = read_mesh_bytes(head + body, name="m.ply", units="mm")
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3], [0, 1, 4]])
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(head + body.replace(b"3 0 1 4", b"3 0 1 7"), name="m.ply", units="mm")
    assert_one_line(err, "m.ply", "face 1 refers to vertex 7")
    with pytest.raises(MeshError, match="truncated"):
        read_mesh_bytes(head + body[:-12], name="m.ply", units="mm")
    src = trimesh.creation.box(extents=(20, 20, 20))
    data = trimesh.exchange.ply.export_ply(src, encoding="binary")
    with pytest.raises(MeshError, match="truncated"):
        read_mesh_bytes(data[:-7], name="b.ply", units="mm")
    with pytest.raises(MeshError, match="no face element"):
        read_mesh_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                        b"property float z\nend_header\n0 0 0\n", name="p.ply", units="mm")  # fmt: skip


def test_off_errors():
    good = (CORPUS / "trimesh/unitcube.off").read_bytes()
    with pytest.raises(MeshError) as err:
        read_mesh_bytes(good.replace(b"  4  0 4 7 3", b"  4  0 4 9 3"), name="u.off", units="mm")
    assert_one_line(err, "u.off", "line 19", "refers to vertex 9")
    with pytest.raises(MeshError, match="truncated"):
        read_mesh_bytes(good[:250], name="u.off", units="mm")
    with pytest.raises(MeshError, match="only 3-dimensional"):
        read_mesh_bytes(b"4OFF\n1 0 0\n", name="u.off", units="mm")
    with pytest.raises(MeshError, match="line 2: expected the vertex and face counts"):
        read_mesh_bytes(b"OFF\nabc\n", name="u.off", units="mm")
    garbage = b"OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 zz\n"
    with pytest.raises(MeshError, match="line 6: face vertex index 3 is not a whole number"):
        read_mesh_bytes(garbage, name="g.off", units="mm")


# ------------------------------------------------------------------------------------------- internals


def test_merge_exact_first_occurrence_and_signed_zero():
    pts = np.array([[1, 2, 3], [0, 0, 0], [1, 2, 3], [-0.0, 0, 0], [5, 5, 5]], dtype=np.float32)
    unique, inverse = merge_exact(pts)
    np.testing.assert_array_equal(unique, [[1, 2, 3], [0, 0, 0], [5, 5, 5]])
    np.testing.assert_array_equal(inverse, [0, 1, 0, 1, 2])
    rng = np.random.default_rng(3)
    many = rng.integers(0, 20, size=(5000, 3)).astype(np.float64)
    unique, inverse = merge_exact(many)
    np.testing.assert_array_equal(unique[inverse], many)
    assert len(unique) == len(np.unique(many, axis=0))


def test_fan_triangulate():
    tris = fan_triangulate(np.array([3, 5, 4]), np.arange(12))
    np.testing.assert_array_equal(tris, [[0, 1, 2], [3, 4, 5], [3, 5, 6], [3, 6, 7], [8, 9, 10], [8, 10, 11]])


FUZZ_FILES = [
    "numpy-stl/CubeInvalidUnicode.stl", "assimp/sphereWithHole.stl", "trimesh/unitcube.off",
    "trimesh/joined_tetrahedra.obj", "assimp/production_components.3mf",
    "3mf-samples/MUSTPASS_Chapter3.2c_MultipleItemsTransform.3mf",
]  # fmt: skip


@pytest.mark.parametrize("rel", FUZZ_FILES)
def test_damaged_files_fail_cleanly(rel):
    """Truncations and byte flips either load a non-empty mesh or raise MeshError/UnitsError."""
    data = (CORPUS / rel).read_bytes()
    rng = np.random.default_rng(len(rel))
    variants = [data[: int(k)] for k in rng.integers(0, len(data), 25)]
    for _ in range(40):
        b = bytearray(data)
        for pos in rng.integers(0, len(b), rng.integers(1, 4)):
            b[pos] = int(rng.integers(0, 256))
        variants.append(bytes(b))
    for v in variants:
        try:
            mesh = read_mesh_bytes(v, name=Path(rel).name, units=None if rel.endswith(".3mf") else "mm",
                                   check_extent=False)  # fmt: skip
        except (MeshError, UnitsError) as err:
            assert "\n" not in str(err)
        else:
            assert len(mesh.faces) > 0 and np.isfinite(mesh.vertices).all()
