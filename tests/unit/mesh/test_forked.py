"""The forked head start (fabctl.mesh.forked) and validation with and without it."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from fabctl import profiles
from fabctl.mesh import forked
from fabctl.mesh.forked import DIRECT_BYTES, Forked, fork_enabled
from fabctl.mesh.types import MeshInput
from fabctl.mesh.validate import validate
from tests.unit.mesh.guide_variants import load_guide, second_shell, self_intersection

PARENT = os.getpid()


def where_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def fails_in_child(x: int) -> int:
    if os.getpid() != PARENT:
        raise RuntimeError("only in the child")
    return x + 1


def dies_in_child(x: int) -> int:
    if os.getpid() != PARENT:
        os.kill(os.getpid(), signal.SIGKILL)
    return x + 2


def test_runs_in_a_child_and_returns_its_result() -> None:
    assert fork_enabled()
    with Forked(where_and_square, 12) as job:
        assert job.forked
        pid, value = job.result()
    assert value == 144
    assert pid != os.getpid()  # it really ran elsewhere
    assert job.seconds >= 0.0


def hangs_in_child(x: int) -> int:
    if os.getpid() != PARENT:
        time.sleep(60)
    return x + 3


def child_settings(_x: int) -> tuple[str, bool]:
    return Path("/proc/self/oom_score_adj").read_text().strip(), gc.isenabled()


@pytest.mark.parametrize("fn, expected", [
    (fails_in_child, 8), (dies_in_child, 9),
    # validation passes a functools.partial: its failure must be handled the same way
    (partial(fails_in_child), 8), (partial(dies_in_child), 9)])
def test_a_failed_child_is_computed_here(fn, expected: int) -> None:
    with Forked(fn, 7) as job:
        assert job.forked
        assert job.result() == expected
    assert not job.forked  # the answer came from this process


def test_a_child_that_hangs_is_killed_and_computed_here(monkeypatch) -> None:
    monkeypatch.setattr(forked, "TIMEOUT_S", 1.0)
    t0 = time.monotonic()
    with Forked(partial(hangs_in_child), 7) as job:
        proc = job._proc
        assert job.result() == 10
    assert time.monotonic() - t0 < 10
    assert not proc.is_alive()


def test_the_child_goes_first_when_memory_runs_out_and_collects_no_garbage() -> None:
    with Forked(child_settings, 0) as job:
        score, gc_on = job.result()
    assert job.seconds >= 0.0
    assert score == "1000" and gc_on is False
    assert gc.isenabled()  # the parent's own collector is untouched


def test_disabled_by_environment(monkeypatch) -> None:
    monkeypatch.setenv("FABCTL_MESH_FORK", "0")
    assert not fork_enabled()
    with Forked(where_and_square, 3) as job:
        assert not job.forked
        assert job.result() == (os.getpid(), 9)


def test_leaving_early_reaps_the_child() -> None:
    with Forked(where_and_square, 5) as job:
        proc = job._proc
        assert proc is not None
    assert not proc.is_alive()
    assert proc.exitcode is not None


def big_then_slow(x: int) -> tuple[int, np.ndarray]:
    """A first answer far bigger than a pipe holds (the child sends it from a thread and goes on)."""
    return os.getpid(), np.arange(x * 100_000, dtype=np.float64)


def slow_square(x: int) -> tuple[int, int, float]:
    time.sleep(0.5)
    return os.getpid(), x * x, time.monotonic()


def test_the_first_step_is_answered_while_the_child_goes_on() -> None:
    with Forked(slow_square, 6, first=(big_then_slow, (4,))) as job:
        t0 = time.monotonic()
        pid0, arr = job.first_result()
        got_first = time.monotonic()
        pid1, value, done = job.result()
    assert pid0 == pid1 != os.getpid() and value == 36
    assert len(arr) == 400_000 and arr[-1] == 399_999.0  # 3.2 MB came through the pipe whole
    assert got_first - t0 < 0.4 < done - t0  # the first answer did not wait for the second step
    assert job.first_seconds >= 0.0 and job.seconds >= 0.5


@pytest.mark.parametrize("first, main, want", [
    ((fails_in_child, (1,)), where_and_square, "first here, main in the child"),
    ((where_and_square, (1,)), fails_in_child, "first in the child, main here"),
    ((where_and_square, (1,)), dies_in_child, "first in the child, main here after it died"),
    ((dies_in_child, (1,)), where_and_square, "both here: the child died in the first step")])
def test_a_failed_step_is_computed_here(first, main, want: str) -> None:
    with Forked(main, 5, first=first) as job:
        a = job.first_result()
        b = job.result()
    first_here = want.startswith("first here") or want.startswith("both")
    main_here = "main here" in want or want.startswith("both")
    value_a = a[1] if isinstance(a, tuple) else a
    assert value_a == {where_and_square: 1, fails_in_child: 2, dies_in_child: 3}[first[0]]
    if isinstance(a, tuple):
        assert (a[0] == os.getpid()) == first_here
    value_b = b[1] if isinstance(b, tuple) else b
    assert value_b == {where_and_square: 25, fails_in_child: 6, dies_in_child: 7}[main]
    if isinstance(b, tuple):
        assert (b[0] == os.getpid()) == main_here
    assert job.forked == (not main_here)


def _mesh(V: np.ndarray, F: np.ndarray) -> MeshInput:
    V = np.ascontiguousarray(V, dtype=np.float64)
    F = np.ascontiguousarray(F, dtype=np.int64)
    return MeshInput(vertices=V, faces=F, source_sha256="0" * 64, source_format="stl-binary", units="mm",
                     units_source="declared")


@pytest.mark.parametrize("variant", ["self_intersection", "second_shell"])
def test_validation_is_the_same_with_and_without_the_child(monkeypatch, variant: str) -> None:
    guide, plan = load_guide()
    make = {"self_intersection": self_intersection, "second_shell": second_shell}[variant]
    V, F, _ = make(np.array(guide.vertices), np.array(guide.faces))
    mesh = _mesh(V, F)
    resin, printer = profiles.resin(profiles.DEFAULT_RESIN), profiles.printer(profiles.DEFAULT_PRINTER)
    reports = {}
    for mode in ("1", "0"):
        monkeypatch.setenv("FABCTL_MESH_FORK", mode)
        reports[mode] = validate(mesh, plan, resin, printer).model_dump(exclude={"timings_s"})
    assert reports["1"] == reports["0"]
    si = reports["1"]["self_intersections"]
    if variant == "self_intersection":
        assert si["pairs"] > 0
    assert not reports["1"]["ok"]


def test_buffered_output_is_not_written_twice(tmp_path) -> None:
    """The child flushes its copy of stdout when it ends; whatever the parent had buffered must not appear
    twice (stdout to a pipe is block-buffered; multiprocessing flushes before it forks, a bare os.fork would
    not)."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "s.py"
    script.write_text(
        "import os\n"
        "from fabctl.mesh.forked import Forked\n"
        "print('before', end='')\n"
        "with Forked(os.getpid) as job:\n"
        "    child = job.result()\n"
        "print(' after', child != os.getpid())\n")
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                         cwd=root, env={**os.environ, "PYTHONPATH": str(root)}).stdout
    assert out == "before after True\n"


def unpicklable(x: int) -> tuple[int, object]:
    return os.getpid(), threading.Lock()


def test_an_answer_that_cannot_be_pickled_is_computed_here() -> None:
    with Forked(unpicklable, 1, first=(where_and_square, (3,))) as job:
        assert job.first_result()[1] == 9
        pid, _ = job.result()
    assert pid == os.getpid() and not job.forked


def mid_sized(x: int) -> tuple[int, bytes]:
    return os.getpid(), b"x" * x


def test_answers_past_the_direct_budget_still_arrive() -> None:
    """A first answer that fits the direct-write budget, a second one that does not: both come from the child,
    whole and in order."""
    size = DIRECT_BYTES * 3 // 4
    with Forked(mid_sized, size, first=(mid_sized, (size,))) as job:
        (pid0, a), (pid1, b) = job.first_result(), job.result()
    assert pid0 == pid1 != os.getpid() and job.forked
    assert len(a) == len(b) == size
