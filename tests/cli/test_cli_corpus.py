"""Every file of the broken-mesh corpus through the real CLI: loaded, or one clear line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CORPUS, assert_one_line_error

FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "ATTRIBUTION.md")

# files the intake must refuse, with a word its one-line error must contain
REFUSED = {
    "trimesh/empty.stl": "empty",
    "trimesh/stl_empty_bin.stl": "empty",
    "microstl/empty_file.stl": "empty",
    "microstl/incomplete_binary.stl": "truncated",
    "microstl/incomplete_vertex_ascii.stl": "line 6",
    "microstl/incomplete_normal_ascii.stl": "line",
    "assimp/malformed_property_index_oob.3mf": "property index",
    "3mf-samples/MUSTFAIL_Chapter2.3.2a_NonUTF_Encoding.3mf": "utf",
}


def test_corpus_is_complete() -> None:
    assert len(FILES) == 29
    assert all((CORPUS / name).is_file() for name in REFUSED)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_corpus_file_loads_or_fails_cleanly(fabctl, path: Path) -> None:
    rel = str(path.relative_to(CORPUS))
    r = fabctl("mesh", "info", str(path), "--units", "mm", "--json")
    if rel in REFUSED:
        assert_one_line_error(r, 2, REFUSED[rel])
        assert r.out == ""
    else:
        assert r.code == 0, (r.code, r.err)
        doc = json.loads(r.out)
        assert doc["triangles"] > 0 and doc["vertices"] >= 3
        assert len(doc["sha256"]) == 64
