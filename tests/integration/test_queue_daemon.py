"""The queue daemon as a real subprocess (`fabctl queue serve`) against mock printers served over TCP from this
test process, so the printers' executed-command logs outlive the daemon: kill -9 mid-job and recovery without
resume, two daemons sharing one store with four printers and 200 jobs run exactly once, a printer that drops
its link mid-job, SIGTERM with --on-stop interrupt and finish, and cancel/requeue from the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import mockprinter
import pytest
from mockprinter.config import MockConfig, parse_faults
from mockprinter.marlin import MarlinSim

from fabctl import jobstore as js
from fabctl.db import Database, open_db
from fabctl.jobstore import JobState
from fabctl.trace import log
from fabctl.transport.gcode_line import parse_program
from tests.conftest import ROOT, assert_one_line_error

pytestmark = pytest.mark.db

S = JobState
SIM_LASER = (ROOT / "profiles" / "printers" / "sim-laser.toml").read_text()
TOKEN = re.compile(r"^G92 X(\d+)$")


def job_text(token: int, layers: int = 1) -> str:
    """A tiny laser job; ``G92 X<token>`` is the command that identifies it in the printer's log."""
    out = [f"; job token {token}", "G21", "G90", "M5", f"G92 X{token}"]
    for i in range(layers):
        z = 0.05 * (i + 1)
        out += [f";LAYER:{i}", f"G1 Z{z:.3f} F300", "M3 S120", "G1 X10 Y10 F60000", "G1 X11 Y10", "M5"]
    return "\n".join(out) + "\n"


def n_commands(text: str) -> int:
    return len(parse_program(text).commands)


def tokens(sim: MarlinSim) -> Counter:
    return Counter(int(m.group(1)) for _, cmd in sim.executed if (m := TOKEN.match(cmd)))


@contextmanager
def printers(profiles: Path, specs: dict[str, dict]) -> Iterator[dict[str, MarlinSim]]:
    """Mock printers on TCP (one per name, options as MockConfig fields) and a printer profile for each."""
    (profiles / "printers").mkdir(parents=True, exist_ok=True)
    runners, sims = [], {}
    try:
        for name, opts in specs.items():
            opts = dict(opts)
            opts.setdefault("exposure_scale", 0.001)
            if "faults" in opts:
                opts["faults"] = parse_faults(opts["faults"])
            runner, link = mockprinter.serve_tcp(MockConfig(name=name, **opts))
            runners.append(runner)
            sims[name] = runner.sim
            url = f"socket://127.0.0.1:{link.port}"
            text = SIM_LASER.replace('url = "mockprinter://sim-laser?exposure_scale=0.001"', f'url = "{url}"')
            assert url in text
            (profiles / "printers" / f"{name}.toml").write_text(text)
        yield sims
    finally:
        for r in runners:
            r.stop()


@pytest.fixture
def env(fabctl_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    profiles = tmp_path / "profiles"
    monkeypatch.setenv("FABCTL_PROFILES_DIR", str(profiles))
    return profiles


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `fabctl queue serve` subprocesses; any still running at the end is killed."""
    procs: list[subprocess.Popen] = []

    def start(names: list[str], *extra: str, lease_s: float = 2.0) -> subprocess.Popen:
        err = open(tmp_path / f"daemon-{len(procs)}.log", "w")
        p = subprocess.Popen([sys.executable, "-m", "fabctl", "queue", "serve", "--printers", ",".join(names),
                              "--poll-s", "0.1", "--lease-s", str(lease_s), *extra],
                             stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT, env=dict(os.environ))
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def add_jobs(db: Database, tmp: Path, printer_of: Callable[[int], str], n: int, layers: int = 1,
             first: int = 1) -> dict[str, int]:
    """``n`` queued file jobs; returns job id -> token."""
    out = {}
    for k in range(first, first + n):
        f = tmp / f"job-{k}.gcode"
        f.write_text(job_text(k, layers))
        job = js.create(db, case_id="", printer_id=printer_of(k), resin_id=None, lot=None, actor="tech1",
                        queued=True, owner=None, kind="file", job_file=str(f))
        out[job.job_id] = k
    return out


def wait_for(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_kill_9_mid_job_is_interrupted_after_restart_and_never_resent(env: Path, daemons, fabctl,
                                                                      tmp_path: Path) -> None:
    db = open_db(Path(os.environ["FABCTL_HOME"]))
    with printers(env, {"p1": {"exposure_s": 0.4, "exposure_scale": 1.0}}) as sims:
        jobs = add_jobs(db, tmp_path, lambda k: "p1", 1, layers=12)
        (job_id,) = jobs
        total = n_commands(job_text(1, 12))
        first = daemons(["p1"])
        wait_for(lambda: (js.get(db, job_id).last_line or 0) >= 8, 30, "the job to be printing")
        assert js.get(db, job_id).state is S.printing
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        seen = js.get(db, job_id)
        assert seen.state is S.printing and js.printer_owner(db, "p1") is not None  # the lease outlives it
        second = daemons(["p1"])
        wait_for(lambda: js.get(db, job_id).state is S.interrupted, 30, "recovery")
        time.sleep(1.5)  # the new daemon idles: it must not pick the job up again
        job = js.get(db, job_id)
        assert job.state is S.interrupted and job.last_line is not None and job.last_line >= seen.last_line
        assert f"last confirmed line {job.last_line}" in job.reason and "lease expired" in job.reason
        sim = sims["p1"]
        executed_job_lines = [c for n, c in sim.executed if n is not None and n >= 1 and "M115" not in c]
        assert tokens(sim) == {1: 1}
        assert job.last_line <= len(executed_job_lines) < total  # confirmed <= executed, and it stopped
        assert [c for _, c in sim.executed].count("M115") == 1  # one handshake: the new daemon never connected
        assert js.printer_owner(db, "p1") not in (None, seen.owner)  # the new daemon holds the printer now
        evs = [e.payload for e in log.events(db, f"svc-{job_id}") if e.type == "job.state"]
        assert [e["to_state"] for e in evs] == ["queued", "preparing", "sending", "printing", "interrupted"]
        assert log.verify(db).ok
        # a person re-queues it: a new job, from the start, that references the old one
        r = fabctl("queue", "requeue", job_id, "--json")
        assert r.code == 0, r.err
        new = json.loads(r.out)
        assert new["requeue_of"] == job_id and new["state"] == "queued"
        wait_for(lambda: js.get(db, new["job_id"]).state is S.done, 60, "the re-queued job")
        assert tokens(sim) == {1: 2}
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0


def test_two_daemons_four_printers_200_jobs_each_run_exactly_once(env: Path, daemons, tmp_path: Path) -> None:
    db = open_db(Path(os.environ["FABCTL_HOME"]))
    names = ["p1", "p2", "p3", "p4"]
    with printers(env, {n: {} for n in names}) as sims:
        jobs = add_jobs(db, tmp_path, lambda k: names[k % 4], 200)
        t0 = time.monotonic()
        a = daemons(names, "--owner", "host-a")
        b = daemons(names, "--owner", "host-b")
        wait_for(lambda: not js.list_jobs(db, [S.queued, S.preparing, S.sending, S.printing]), 120,
                 "all 200 jobs to end")
        took = time.monotonic() - t0
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
        assert a.wait(20) == 0 and b.wait(20) == 0
    ended = js.list_jobs(db)
    assert Counter(j.state for j in ended) == {S.done: 200}, [j.reason for j in ended if j.state is not S.done]
    per_printer = {n: tokens(s) for n, s in sims.items()}
    seen = Counter()
    for n, counts in per_printer.items():
        assert all(names[t % 4] == n for t in counts), n  # each job ran on its own printer
        seen.update(counts)
    assert seen == Counter({t: 1 for t in jobs.values()})  # every job exactly once, none twice, none lost
    owners = Counter(j.owner for j in ended)
    assert set(owners) <= {"host-a", "host-b"}
    assert log.verify(db).ok
    print(f"200 jobs on 4 printers by 2 daemons in {took:.1f} s; jobs per daemon {dict(owners)}")


def test_printer_disconnect_fails_its_job_and_the_others_go_on(env: Path, daemons, tmp_path: Path) -> None:
    db = open_db(Path(os.environ["FABCTL_HOME"]))
    with printers(env, {"p1": {"faults": "disconnect@12"}, "p2": {}}) as sims:
        bad = add_jobs(db, tmp_path, lambda k: "p1", 1, layers=5)
        later = add_jobs(db, tmp_path, lambda k: "p1", 1, first=2)
        good = add_jobs(db, tmp_path, lambda k: "p2", 3, first=3)
        d = daemons(["p1", "p2"])
        wait_for(lambda: all(js.get(db, j).terminal for j in [*bad, *good]), 60, "the jobs to end")
        (bad_id,) = bad
        failed = js.get(db, bad_id)
        assert failed.state is S.failed
        assert "p1" in failed.reason or "127.0.0.1" in failed.reason, failed.reason
        assert re.search(r"disconnect|closed|lost|no answer|stopped|timed out|reset", failed.reason), failed.reason
        assert [js.get(db, j).state for j in good] == [S.done] * 3
        assert tokens(sims["p2"]) == {3: 1, 4: 1, 5: 1}
        # the printer that dropped is offline: its next job stays queued instead of failing too
        time.sleep(1.0)
        (later_id,) = later
        assert js.get(db, later_id).state is S.queued
        d.send_signal(signal.SIGTERM)
        assert d.wait(20) == 0
    assert log.verify(db).ok


def test_sigterm_interrupt_cancels_at_the_printer_and_marks_interrupted(env: Path, daemons,
                                                                        tmp_path: Path) -> None:
    db = open_db(Path(os.environ["FABCTL_HOME"]))
    with printers(env, {"p1": {"exposure_s": 0.4, "exposure_scale": 1.0}}) as sims:
        (job_id,) = add_jobs(db, tmp_path, lambda k: "p1", 1, layers=20)
        (queued_id,) = add_jobs(db, tmp_path, lambda k: "p1", 1, first=2)
        d = daemons(["p1"], "--on-stop", "interrupt")
        wait_for(lambda: (js.get(db, job_id).last_line or 0) >= 5, 30, "the job to be printing")
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        assert d.wait(20) == 0
        assert time.monotonic() - t0 < 8  # did not wait for the 8 s job
        job = js.get(db, job_id)
        assert job.state is S.interrupted and "--on-stop interrupt" in job.reason and job.last_line >= 5
        assert js.get(db, queued_id).state is S.queued
        assert js.printer_owner(db, "p1") is None  # the lease was released
        sim = sims["p1"]
        assert tokens(sim) == {1: 1}
        numbered = [c for n, c in sim.executed if n is not None]
        assert numbered[-2:] == ["M5", "M400"]  # the stop sequence reached the printer: beam off
        assert len([1 for n, _ in sim.executed if n]) < n_commands(job_text(1, 20))
    assert log.verify(db).ok


def test_sigterm_finish_lets_the_running_job_end_and_claims_nothing(env: Path, daemons, tmp_path: Path) -> None:
    db = open_db(Path(os.environ["FABCTL_HOME"]))
    with printers(env, {"p1": {"exposure_s": 0.15, "exposure_scale": 1.0}}) as sims:
        (job_id,) = add_jobs(db, tmp_path, lambda k: "p1", 1, layers=12)
        (queued_id,) = add_jobs(db, tmp_path, lambda k: "p1", 1, first=2)
        d = daemons(["p1"])  # --on-stop finish is the default
        wait_for(lambda: js.get(db, job_id).state is S.printing, 30, "the job to be printing")
        d.send_signal(signal.SIGTERM)
        assert d.wait(30) == 0
        assert js.get(db, job_id).state is S.done
        assert js.get(db, queued_id).state is S.queued
        assert tokens(sims["p1"]) == {1: 1}
        assert js.printer_owner(db, "p1") is None


def test_cli_cancel_running_and_queued_and_status(env: Path, daemons, fabctl, tmp_path: Path) -> None:
    db = open_db(Path(os.environ["FABCTL_HOME"]))
    with printers(env, {"p1": {"exposure_s": 0.4, "exposure_scale": 1.0}}) as sims:
        f = tmp_path / "long.gcode"
        f.write_text(job_text(1, 20))
        r = fabctl("queue", "add", str(f), "--printer", "p1", "--json")
        assert r.code == 0, r.err
        job_id = json.loads(r.out)["job_id"]
        (queued_id,) = add_jobs(db, tmp_path, lambda k: "p1", 1, first=2)
        r = fabctl("queue", "cancel", queued_id)
        assert r.code == 0 and "cancelled" in r.out
        d = daemons(["p1"], "--owner", "lab-host-1")
        wait_for(lambda: (js.get(db, job_id).last_line or 0) >= 5, 30, "the job to be printing")
        r = fabctl("queue", "status", job_id, "--json")
        doc = json.loads(r.out)
        assert r.code == 0 and doc["state"] == "printing" and doc["owner"] == "lab-host-1"
        assert doc["printer_owner"] == "lab-host-1"
        assert [e["payload"]["to_state"] for e in doc["events"]] == ["queued", "preparing", "sending", "printing"]
        assert doc["events"][0]["case"] == f"svc-{job_id}"
        r = fabctl("queue", "cancel", job_id)
        assert r.code == 0 and "cancel requested" in r.out
        wait_for(lambda: js.get(db, job_id).terminal, 20, "the cancel")
        job = js.get(db, job_id)
        assert job.state is S.cancelled and job.reason.startswith("cancelled by tech1"), job.reason
        assert tokens(sims["p1"]) == {1: 1}  # the cancelled queued job never reached the printer
        assert len([1 for n, _ in sims["p1"].executed if n]) < n_commands(job_text(1, 20))
        r = fabctl("queue", "ls", "--json")
        states = {j["job_id"]: j["state"] for j in json.loads(r.out)["jobs"]}
        assert states == {job_id: "cancelled", queued_id: "cancelled"}
        assert_one_line_error(fabctl("queue", "cancel", job_id), 3, job_id, "already ended")
        assert_one_line_error(fabctl("queue", "status", "job-999999"), 2, "job-999999")
        assert_one_line_error(fabctl("queue", "requeue", js.list_jobs(db)[0].job_id, env={"FABCTL_OPERATOR": ""}),
                              2, "operator")
        d.send_signal(signal.SIGTERM)
        assert d.wait(20) == 0
