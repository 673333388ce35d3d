"""3MF reader: stdlib only (``zipfile`` and expat, the parser under ``xml.etree.ElementTree``).

The model XML is streamed through expat with no tree kept, so memory follows the geometry, not the XML.

What is read: the root model part named by ``_rels/.rels``; its ``unit``; objects of ``type="model"`` (or no
type) reached from ``<build>`` items, through ``<components>``, with every transform applied; production
extension ``p:path`` references to objects in other model parts, with object ids scoped per part.

What is refused (``MeshError``): an unreadable zip, a model part over ``MAX_MODEL_PART_BYTES`` once
inflated (zip bomb), XML that is not UTF-8/UTF-16 or has a DOCTYPE, malformed XML, a required extension
we do not read (beam lattice, slice, ...), a vertex index out of range, and a property (colour/material)
index out of range or pointing at no property group. fabctl uses no materials, but a file whose references
are broken did not come out of a planning system intact, so it is not trusted to carry a correct shape.

What is dropped with a note: ``support``/``solidsupport``/``surface``/``other`` objects. A transform that
mirrors (negative determinant) reverses the triangle order so normals stay outward, with a note.
"""

from __future__ import annotations

import io
import posixpath
import re
import struct
import zipfile
import zlib
from array import array
from dataclasses import dataclass, field
from xml.parsers import expat

import numpy as np

from fabctl.mesh.io_common import ParsedMesh, check_facet_cap, fail, plural
from fabctl.units import THREEMF_UNITS

CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
PROD = "http://schemas.microsoft.com/3dmanufacturing/production/2015/06"
MAT = "http://schemas.microsoft.com/3dmanufacturing/material/2015/02"
RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
MODEL_REL = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"

#: the most bytes one model part may inflate to, and all of them together
MAX_MODEL_PART_BYTES = 1 << 30
MAX_TOTAL_MODEL_BYTES = 2 << 30
_MAX_DEPTH = 32
_CHUNK = 1 << 22

#: required extensions whose content cannot change the shape we read
_HARMLESS_EXTENSIONS = {
    CORE,
    PROD,
    MAT,
    "http://schemas.microsoft.com/3dmanufacturing/trianglesets/2021/07",
}
_EXTENSION_NAMES = {
    "http://schemas.microsoft.com/3dmanufacturing/beamlattice/2017/02": "beam lattice",
    "http://schemas.microsoft.com/3dmanufacturing/slice/2015/07": "slice",
    "http://schemas.3mf.io/3dmanufacturing/volumetric/2022/01": "volumetric",
    "http://schemas.3mf.io/3dmanufacturing/booleanoperations/2023/07": "boolean operations",
    "http://schemas.microsoft.com/3dmanufacturing/securecontent/2019/04": "secure content",
    "http://schemas.3mf.io/3dmanufacturing/displacement/2023/10": "displacement",
}
#: property resources and the element that is one entry of each
_GROUPS = {
    (CORE, "basematerials"): "base",
    (MAT, "colorgroup"): "color",
    (MAT, "texture2dgroup"): "tex2coord",
    (MAT, "compositematerials"): "composite",
    (MAT, "multiproperties"): "multi",
}
_DROPPED_TYPES = ("support", "solidsupport", "surface", "other")
_ENCODING = re.compile(rb"""\A\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


@dataclass
class _Object:
    oid: int
    otype: str
    pid: int = -1
    pindex: int = -1
    has_mesh: bool = False
    xyz: array = field(default_factory=lambda: array("d"))
    tri: array = field(default_factory=lambda: array("q"))
    props: array = field(default_factory=lambda: array("q"))  # pid, p1, p2, p3 per triangle; -1 = absent
    components: list[tuple[int, np.ndarray, str | None]] = field(default_factory=list)


@dataclass
class _Part:
    unit: str = "millimeter"
    objects: dict[int, _Object] = field(default_factory=dict)
    groups: dict[int, int] = field(default_factory=dict)
    items: list[tuple[int, np.ndarray, str | None]] = field(default_factory=list)


def _int(value: str | None, what: str) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        fail(f"3MF {what} is missing or not a whole number")


def _matrix(value: str | None, what: str) -> np.ndarray:
    """3MF ``transform`` (12 numbers, row-vector convention) -> (4, 4) float64; identity if absent."""
    m = np.eye(4)
    if value is None:
        return m
    try:
        nums = [float(t) for t in value.split()]
    except ValueError:
        nums = []
    if len(nums) != 12 or not np.all(np.isfinite(nums)):
        fail(f"3MF {what} transform is not 12 finite numbers")
    m[:, :3] = np.array(nums).reshape(4, 3)
    return m


class _ModelReader:
    """expat handlers that fill a ``_Part`` from one model part's XML."""

    def __init__(self, max_facets: int, counter: list[int]) -> None:
        self.part, self.max_facets, self.counter = _Part(), max_facets, counter
        self.stack: list[tuple[str, str]] = []
        self.obj: _Object | None = None
        self.group: tuple[str, str] | None = None
        self.group_size = self.group_depth = self.group_id = 0
        self.prefixes: dict[str, str] = {}
        self.required: list[str] = []

    def start_ns(self, prefix: str | None, uri: str) -> None:
        self.prefixes[prefix or ""] = uri

    def start(self, name: str, attrs: dict[str, str]) -> None:
        ns, _, local = name.rpartition(" ")
        parent = self.stack[-1] if self.stack else None
        self.stack.append((ns, local))
        if parent is None:
            if (ns, local) != (CORE, "model"):
                fail("3MF root element is not a core <model>")
            self.part.unit = attrs.get("unit", "millimeter")
            self.required = attrs.get("requiredextensions", "").split()
            return
        if ns == CORE and local == "vertex" and self.obj is not None and parent == (CORE, "vertices"):
            try:
                self.obj.xyz.extend((float(attrs["x"]), float(attrs["y"]), float(attrs["z"])))
            except (KeyError, ValueError):
                fail(f"3MF object {self.obj.oid} vertex {len(self.obj.xyz) // 3} has a missing or "
                     "non-numeric coordinate")  # fmt: skip
        elif ns == CORE and local == "triangle" and self.obj is not None and parent == (CORE, "triangles"):
            self._triangle(attrs)
        elif self.group is not None and len(self.stack) == self.group_depth + 1:
            if ns == self.group[0] and local == _GROUPS[self.group]:
                self.group_size += 1
        elif parent == (CORE, "resources") and (ns, local) == (CORE, "object"):
            otype = attrs.get("type", "model")
            if otype not in ("model", *_DROPPED_TYPES):
                fail("3MF object has an unknown type")
            self.obj = _Object(_int(attrs.get("id"), "object id"), otype)
            if "pid" in attrs:
                self.obj.pid = _int(attrs["pid"], "object pid")
                self.obj.pindex = _int(attrs.get("pindex", "0"), "object pindex")
            if self.obj.oid in self.part.objects:
                fail(f"3MF object id {self.obj.oid} is used twice in one model part")
        elif parent == (CORE, "resources") and (ns, local) in _GROUPS:
            self.group, self.group_depth, self.group_size = (ns, local), len(self.stack), 0
            self.group_id = _int(attrs.get("id"), "property group id")
        elif (ns, local) == (CORE, "mesh") and self.obj is not None:
            self.obj.has_mesh = True
        elif (ns, local) == (CORE, "component") and self.obj is not None:
            oid = _int(attrs.get("objectid"), "component objectid")
            self.obj.components.append((oid, _matrix(attrs.get("transform"), "component"),
                                        attrs.get(f"{PROD} path")))  # fmt: skip
        elif (ns, local) == (CORE, "item") and parent == (CORE, "build"):
            oid = _int(attrs.get("objectid"), "build item objectid")
            self.part.items.append((oid, _matrix(attrs.get("transform"), "build item"),
                                    attrs.get(f"{PROD} path")))  # fmt: skip

    def _triangle(self, attrs: dict[str, str]) -> None:
        obj = self.obj
        t = len(obj.tri) // 3
        try:
            obj.tri.extend((int(attrs["v1"]), int(attrs["v2"]), int(attrs["v3"])))
            if len(attrs) == 3:
                obj.props.extend((-1, -1, -1, -1))
            else:
                given = [int(attrs[k]) if k in attrs else -1 for k in ("pid", "p1", "p2", "p3")]
                if any(int(attrs[k]) < 0 for k in ("pid", "p1", "p2", "p3") if k in attrs):
                    fail(f"3MF object {obj.oid} triangle {t} has a negative property index")
                if given[2] < 0:
                    given[2] = given[1]
                if given[3] < 0:
                    given[3] = given[1]
                obj.props.extend(given)
        except (KeyError, ValueError):
            fail(f"3MF object {obj.oid} triangle {t} has a missing or non-integer index")
        self.counter[0] += 1
        if self.counter[0] > self.max_facets:
            check_facet_cap(self.counter[0], self.max_facets)

    def end(self, name: str) -> None:
        ns, local = self.stack.pop()
        if (ns, local) == (CORE, "object"):
            self.part.objects[self.obj.oid] = self.obj
            self.obj = None
        elif self.group is not None and (ns, local) == self.group and len(self.stack) + 1 == self.group_depth:
            self.part.groups[self.group_id] = self.group_size
            self.group = None


def _no_dtd(*_args: object) -> None:
    fail("3MF model XML has a DOCTYPE or entity declaration, which 3MF does not allow")


def _parse_part(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_facets: int, counter: list[int],
                budget: list[int], root: bool) -> _Part:  # fmt: skip
    """Stream one model part through expat, refusing it once it inflates past the caps."""
    reader = _ModelReader(max_facets, counter)
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.StartNamespaceDeclHandler = reader.start_ns
    parser.StartDoctypeDeclHandler = _no_dtd
    parser.EntityDeclHandler = _no_dtd
    what = "root model part" if root else "a referenced model part"
    if info.file_size > MAX_MODEL_PART_BYTES:
        fail(f"3MF {what} inflates to {info.file_size} bytes, over the {MAX_MODEL_PART_BYTES}-byte limit")
    total = 0
    try:
        with zf.open(info) as fh:
            first = True
            while chunk := fh.read(_CHUNK):
                if first:
                    _check_encoding(chunk, what)
                    first = False
                total += len(chunk)
                budget[0] -= len(chunk)
                if total > MAX_MODEL_PART_BYTES or budget[0] < 0:
                    fail(f"3MF {what} inflates past the {MAX_MODEL_PART_BYTES}-byte limit (zip bomb?)")
                parser.Parse(chunk, False)
            if first:
                fail(f"3MF {what} is empty")
            parser.Parse(b"", True)
    except expat.ExpatError as exc:
        fail(f"3MF {what} is malformed XML ({expat.ErrorString(exc.code)} at line {exc.lineno}, "
             f"column {exc.offset})")  # fmt: skip
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
        OSError,
        struct.error,
    ):
        fail(f"3MF {what} cannot be decompressed (corrupt zip)")
    for prefix in reader.required:
        uri = reader.prefixes.get(prefix)
        if uri not in _HARMLESS_EXTENSIONS:
            ext = _EXTENSION_NAMES.get(uri or "", "an unknown extension")
            fail(f"3MF file requires the {ext} extension, which fabctl does not read")
    return reader.part


def _check_encoding(head: bytes, what: str) -> None:
    """3MF XML must be UTF-8 (OPC also allows UTF-16 with a byte order mark)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if not head.lstrip(b" \t\r\n").startswith(b"<"):
        fail(f"3MF {what} is not UTF-8 encoded")
    m = _ENCODING.match(head[:512])
    if m and m.group(1).lower() not in (b"utf-8", b"utf8"):
        fail(f"3MF {what} declares an encoding other than UTF-8")


class _Package:
    """The zip and its model parts, parsed on first use and cached by part name."""

    def __init__(self, data: bytes, max_facets: int) -> None:
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(data))
            self.names = {i.filename.lstrip("/").lower(): i for i in self.zf.infolist()}
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, NotImplementedError,
                RuntimeError, struct.error):  # fmt: skip
            fail("not a readable zip archive (a 3MF file is a zip)")
        self.max_facets, self.counter, self.budget = max_facets, [0], [MAX_TOTAL_MODEL_BYTES]
        self.parts: dict[str, _Part] = {}
        self.root = self._root_name()

    def _member(self, name: str) -> zipfile.ZipInfo | None:
        return self.names.get(name.lstrip("/").lower())

    def _root_name(self) -> str:
        rels = self._member("_rels/.rels")
        if rels is None:
            fail("3MF package has no _rels/.rels")
        if rels.file_size > 1 << 20:
            fail("3MF _rels/.rels is implausibly large")
        targets: list[str] = []

        def start(name: str, attrs: dict[str, str]) -> None:
            if name == f"{RELS} Relationship" and attrs.get("Type") == MODEL_REL:
                targets.append(attrs.get("Target", ""))

        parser = expat.ParserCreate(namespace_separator=" ")
        parser.StartElementHandler = start
        parser.StartDoctypeDeclHandler = _no_dtd
        parser.EntityDeclHandler = _no_dtd
        try:
            with self.zf.open(rels) as fh:
                parser.Parse(fh.read(1 << 20), True)
        except expat.ExpatError:
            fail("3MF _rels/.rels is malformed XML")
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            NotImplementedError,
            RuntimeError,
            OSError,
            struct.error,
        ):
            fail("3MF _rels/.rels cannot be decompressed (corrupt zip)")
        if len(targets) != 1:
            fail(f"3MF package names {len(targets)} root model parts, expected 1")
        return posixpath.normpath(posixpath.join("/", targets[0])).lstrip("/").lower()

    def part(self, name: str) -> _Part:
        key = posixpath.normpath(posixpath.join("/", name)).lstrip("/").lower()
        if key not in self.parts:
            info = self._member(key)
            if info is None:
                fail("3MF file refers to a model part that is not in the package")
            root = key == self.root
            self.parts[key] = _parse_part(self.zf, info, self.max_facets, self.counter, self.budget, root)
            if not root and self.parts[key].unit != self.parts[self.root].unit:
                fail("3MF model parts disagree about the unit")
        return self.parts[key]


def _checked_mesh(obj: _Object, part: _Part) -> tuple[np.ndarray, np.ndarray]:
    """An object's (n, 3) float64 vertices and (m, 3) int64 triangles, with every index checked."""
    xyz = np.frombuffer(obj.xyz, dtype=np.float64).reshape(-1, 3)
    tri = np.frombuffer(obj.tri, dtype=np.int64).reshape(-1, 3)
    bad = np.flatnonzero(((tri < 0) | (tri >= len(xyz))).any(axis=1))
    if len(bad):
        t = int(bad[0])
        v = int(tri[t][(tri[t] < 0) | (tri[t] >= len(xyz))][0])
        fail(f"3MF object {obj.oid} triangle {t} refers to vertex {v}, the object has "
             f"{plural(len(xyz), 'vertex', 'vertices')}")  # fmt: skip
    props = np.frombuffer(obj.props, dtype=np.int64).reshape(-1, 4)
    pid = np.where(props[:, 0] >= 0, props[:, 0], obj.pid)
    used = (props[:, 1:] >= 0).any(axis=1) | (props[:, 0] >= 0)
    if obj.pid >= 0:
        if obj.pid not in part.groups:
            fail(f"3MF object {obj.oid} refers to property group {obj.pid}, which does not exist")
        if not 0 <= obj.pindex < part.groups[obj.pid]:
            fail(f"3MF object {obj.oid} refers to property index {obj.pindex}, the property group has "
                 f"{part.groups[obj.pid]}")  # fmt: skip
    if used.any():
        ids = np.array(sorted(part.groups), dtype=np.int64)
        sizes = np.array([part.groups[i] for i in ids.tolist()], dtype=np.int64)
        if len(ids):
            slot = np.clip(np.searchsorted(ids, pid), 0, len(ids) - 1)
            known = ids[slot] == pid
            size = np.where(known, sizes[slot], 0)
        else:
            known, size = np.zeros(len(pid), dtype=bool), np.zeros(len(pid), dtype=np.int64)
        bad = np.flatnonzero(used & ~known)
        if len(bad):
            t = int(bad[0])
            if pid[t] < 0:
                fail(f"3MF object {obj.oid} triangle {t} has property indices but no property group")
            fail(
                f"3MF object {obj.oid} triangle {t} refers to property group {int(pid[t])}, which does not exist"
            )
        over = (props[:, 1:] >= size[:, None]) & (props[:, 1:] >= 0)
        bad = np.flatnonzero(over.any(axis=1))
        if len(bad):
            t = int(bad[0])
            p = int(props[t, 1:][over[t]][0])
            fail(f"3MF object {obj.oid} triangle {t} refers to property index {p}, the property group has "
                 f"{int(size[t])}")  # fmt: skip
    return xyz, tri


def read_3mf(data: bytes, max_facets: int) -> ParsedMesh:
    """3MF -> vertices (n, 3) float64 in the file's unit (transforms applied), faces (m, 3) int64."""
    pkg = _Package(data, max_facets)
    root = pkg.part(pkg.root)
    unit = THREEMF_UNITS.get(root.unit)
    if unit is None:
        fail("3MF model has an unknown unit")
    if not root.items:
        fail("3MF build has no items (nothing to print)")
    meshes: list[tuple[np.ndarray, np.ndarray]] = []
    dropped: dict[str, int] = {}
    mirrored, emitted = [], [0]
    checked: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def place(part_name: str, oid: int, m: np.ndarray, depth: int, item: int) -> None:
        part = pkg.part(part_name)
        obj = part.objects.get(oid)
        if obj is None:
            fail(f"3MF build item or component refers to object {oid}, which does not exist")
        if depth > _MAX_DEPTH:
            fail(f"3MF components nest deeper than {_MAX_DEPTH} levels (a cycle?)")
        if obj.has_mesh and len(obj.tri):
            key = (part_name, oid)
            if key not in checked:
                checked[key] = _checked_mesh(obj, part)
            xyz, tri = checked[key]
            emitted[0] += len(tri)
            check_facet_cap(emitted[0], max_facets)
            if np.linalg.det(m[:3, :3]) < 0:
                tri = tri[:, ::-1]
                if item not in mirrored:
                    mirrored.append(item)
            meshes.append((xyz @ m[:3, :3] + m[3, :3], tri))
        for cid, cm, cpath in obj.components:
            place(cpath if cpath is not None else part_name, cid, cm @ m, depth + 1, item)

    for n, (oid, m, path) in enumerate(root.items, 1):
        part_name = path if path is not None else pkg.root
        obj = pkg.part(part_name).objects.get(oid)
        if obj is not None and obj.otype != "model":
            dropped[obj.otype] = dropped.get(obj.otype, 0) + 1
            continue
        place(part_name, oid, m, 0, n)
    notes = [f"{plural(k, f'{t} object')} dropped (3MF type '{t}')" for t, k in dropped.items()]
    for n in mirrored:
        notes.append(f"build item {n} mirrors its object (negative determinant); triangle order reversed")
    if any(p.groups for p in pkg.parts.values()):
        notes.append("3MF colour and material properties ignored")
    if not meshes:
        what = "only " + " and ".join(dropped) + " objects" if dropped else "no triangles"
        fail(f"3MF build holds {what} (empty)")
    offsets = np.cumsum([0] + [len(v) for v, _ in meshes[:-1]])
    vertices = np.concatenate([v for v, _ in meshes])
    faces = np.concatenate([f + o for (_, f), o in zip(meshes, offsets, strict=True)])
    return ParsedMesh(vertices=vertices, faces=faces, notes=notes, file_unit=unit)
