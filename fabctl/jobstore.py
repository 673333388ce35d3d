"""The job store: print jobs, their explicit state machine, and the printer leases of whoever owns a printer.

A job is ``queued`` (waiting for the daemon) or starts ``preparing`` (a direct ``fabctl print``) and moves
through ``TRANSITIONS`` to one terminal state. Every change is written to the ``jobs`` row *and* appended as a
``job.state`` event to the case's trace inside the same ``db.write()`` transaction, so the store and the trace
never disagree. ``db.write()`` is a serialised write transaction on every backend, so each read-then-update
here (job ids, claims, leases) is atomic across processes and hosts.

Service jobs (``kind="file"``: a finished job file sent through the queue) write their trace into the
pseudo-case ``svc-<job id>`` (see fabctl/trace/queue_events.py); case ids starting ``svc-`` are reserved.

A printer lease (``acquire_printer``/``renew_printer``/``release_printer``) says who owns a printer: the
daemon's worker for it, or a direct ``fabctl print``, which must acquire the lease *before* ``create(...,
queued=False)`` and renew it while it runs. In-flight jobs whose owner no longer holds its printer's lease are
marked ``interrupted`` by ``recover`` with their last confirmed line or layer, and never resumed; a person
re-queues them (``requeue``). Lease expiry uses wall-clock UTC, since it is compared across processes and hosts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from fabctl.db import Database
from fabctl.errors import CaseError, CheckFailed, InputError
from fabctl.trace.log import append, check_case_id
from fabctl.trace.queue_events import JobCancelRequested, JobStateChanged

SERVICE_PREFIX = "svc-"


class JobState(StrEnum):
    queued = "queued"
    preparing = "preparing"
    sending = "sending"
    printing = "printing"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"
    interrupted = "interrupted"


S = JobState
_ENDS = frozenset({S.failed, S.cancelled, S.interrupted})
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.queued: frozenset({S.preparing, S.cancelled}),
    S.preparing: frozenset({S.sending}) | _ENDS,
    S.sending: frozenset({S.printing}) | _ENDS,
    S.printing: frozenset({S.done}) | _ENDS,
    S.done: frozenset(),
    S.failed: frozenset(),
    S.cancelled: frozenset(),
    S.interrupted: frozenset(),
}
TERMINAL: frozenset[JobState] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
#: ``owner`` of a job handed to a machine that runs it by itself (a hot folder): no fabctl process follows it and
#: no lease guards it, so ``recover`` leaves it alone. It stays ``printing`` until a person records what the
#: machine reports (``fabctl queue outcome``; fabctl.pipeline.transport_run.record_outcome).
#: (It contains a space, which no daemon's ``--owner`` and no ``fabctl print`` owner can.)
HANDED_OVER = "hot-folder machine"
IN_FLIGHT: frozenset[JobState] = frozenset({S.preparing, S.sending, S.printing})
ACTIVE: frozenset[JobState] = frozenset(JobState) - TERMINAL


@dataclass(frozen=True)
class Job:
    job_id: str
    case_id: str
    printer_id: str
    resin_id: str | None
    lot: str | None
    state: JobState
    kind: str
    job_file: str | None
    owner: str | None
    created_utc: str
    updated_utc: str
    reason: str | None
    last_line: int | None
    last_layer: int | None
    created_by: str
    requeue_of: str | None
    cancel_requested: bool
    cancel_by: str | None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def handed_over(self) -> bool:
        """Printing on a hot-folder machine that runs it by itself (``HANDED_OVER``): only a person ends it."""
        return self.owner == HANDED_OVER and self.state is JobState.printing

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["state"] = self.state.value
        return d


_COLS = ("job_id, case_id, printer_id, resin_id, lot, state, kind, job_file, owner, created_utc, updated_utc,"
         " reason, last_line, last_layer, created_by, requeue_of, cancel_requested, cancel_by")


def _job(r: tuple) -> Job:
    return Job(r[0], r[1], r[2], r[3], r[4], JobState(r[5]), r[6], r[7], r[8], r[9], r[10], r[11], r[12],
               r[13], r[14], r[15], bool(r[16]), r[17])


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def service_case_id(job_id: str) -> str:
    """The pseudo-case whose trace holds a service (``kind="file"``) job's events."""
    return SERVICE_PREFIX + job_id


def _get(cur, job_id: str) -> Job:
    r = cur.execute(f"SELECT {_COLS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    if r is None:
        raise InputError(f"job {job_id} does not exist", hint="list jobs with `fabctl queue ls`")
    return _job(r)


def _event(job: Job, frm: JobState | None, to: JobState, reason, line, layer, extra) -> JobStateChanged:
    return JobStateChanged(job_id=job.job_id, kind=job.kind, printer_id=job.printer_id,
                           from_state=frm.value if frm else None, to_state=to.value, owner=job.owner,
                           reason=reason, last_confirmed_line=line, last_confirmed_layer=layer,
                           requeue_of=job.requeue_of, detail=dict(extra or {}))


def _active_job_of_case(cur, case_id: str) -> tuple[str, str] | None:
    states = tuple(s.value for s in ACTIVE)
    marks = ", ".join("?" for _ in states)
    return cur.execute(f"SELECT job_id, state FROM jobs WHERE case_id = ? AND kind = 'case' AND state IN "
                       f"({marks}) ORDER BY job_no LIMIT 1", (case_id, *states)).fetchone()


def _insert(cur, *, case_id, printer_id, resin_id, lot, actor, queued, owner, kind, job_file,
            requeue_of=None) -> Job:
    if kind not in ("case", "file"):
        raise InputError(f"job kind {kind!r} is not known (case | file)")
    if kind == "file" and not job_file:
        raise InputError("a service job (kind file) needs its job file", hint="pass job_file=PATH")
    if kind == "case":
        check_case_id(case_id)
        if case_id.startswith(SERVICE_PREFIX):
            raise CaseError(f"case id {case_id!r} starts with the reserved prefix {SERVICE_PREFIX!r}",
                            hint="svc-<job id> names a service job's trace")
        busy = _active_job_of_case(cur, case_id)
        if busy:
            raise CheckFailed(f"case {case_id} already has job {busy[0]} ({busy[1]})",
                              hint=f"wait for it, or cancel it: fabctl queue cancel {busy[0]}")
    if not queued and not owner:
        raise InputError("a direct job (queued=False) needs its owner", hint="pass owner=NAME")
    no = cur.execute("SELECT COALESCE(MAX(job_no), 0) + 1 FROM jobs").fetchone()[0]
    job_id = f"job-{no:06d}"
    if kind == "file":
        case_id = service_case_id(job_id)
    now = _iso(_now())
    state = S.queued if queued else S.preparing
    cur.execute("INSERT INTO jobs (job_no, job_id, kind, case_id, printer_id, resin_id, lot, job_file, state,"
                " owner, created_by, created_utc, updated_utc, requeue_of)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (no, job_id, kind, case_id, printer_id, resin_id, lot, job_file, state.value,
                 None if queued else owner, actor, now, now, requeue_of))
    job = _get(cur, job_id)
    append(cur, case_id, _event(job, None, state, None, None, None, None), actor)
    return job


def create(db: Database, *, case_id: str, printer_id: str, resin_id: str | None, lot: str | None,
           actor: str, queued: bool, owner: str | None, kind: str = "case",
           job_file: str | None = None) -> Job:
    """A new job ``job-NNNNNN``: ``queued`` for the daemon, or ``preparing`` owned by ``owner``.

    Refuses (CheckFailed) when the case already has a job that has not ended. For ``kind="file"`` the
    ``case_id`` argument is ignored and the job's trace goes to ``svc-<job id>``.
    """
    with db.write() as cur:
        return _insert(cur, case_id=case_id, printer_id=printer_id, resin_id=resin_id, lot=lot, actor=actor,
                       queued=queued, owner=owner, kind=kind, job_file=job_file)


def _transition(cur, job: Job, to: JobState, *, actor, reason=None, last_line=None, last_layer=None,
                extra=None, owner: str | None = None) -> Job:
    to = JobState(to)
    if to not in TRANSITIONS[job.state]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[job.state])) or "none: it has ended"
        raise CheckFailed(f"job {job.job_id} cannot go from {job.state.value} to {to.value} "
                          f"(allowed: {allowed})", hint="see fabctl.jobstore.TRANSITIONS")
    line = last_line if last_line is not None else job.last_line
    layer = last_layer if last_layer is not None else job.last_layer
    new_owner = owner if owner is not None else job.owner
    cur.execute("UPDATE jobs SET state = ?, updated_utc = ?, reason = ?, last_line = ?, last_layer = ?, "
                "owner = ? WHERE job_id = ? AND state = ?",
                (to.value, _iso(_now()), reason if reason is not None else job.reason, line, layer,
                 new_owner, job.job_id, job.state.value))
    new = _get(cur, job.job_id)
    append(cur, job.case_id, _event(new, job.state, to, reason, line, layer, extra), actor)
    return new


def transition(db: Database, job_id: str, to: JobState | str, *, actor: str, reason: str | None = None,
               last_line: int | None = None, last_layer: int | None = None,
               extra: dict | None = None) -> Job:
    """Move a job to ``to`` if ``TRANSITIONS`` allows it (CheckFailed naming from/to if not); one
    ``job.state`` trace event in the same transaction. ``extra``: machine values for the event's ``detail``."""
    with db.write() as cur:
        return transition_in(cur, job_id, to, actor=actor, reason=reason, last_line=last_line,
                             last_layer=last_layer, extra=extra)


def transition_in(cur, job_id: str, to: JobState | str, *, actor: str, reason: str | None = None,
                  last_line: int | None = None, last_layer: int | None = None, extra: dict | None = None) -> Job:
    """``transition`` inside the caller's ``db.write()`` transaction, so a job's state change commits together
    with the caller's own records (the print's end, its device serial) or not at all."""
    return _transition(cur, _get(cur, job_id), JobState(to), actor=actor, reason=reason,
                       last_line=last_line, last_layer=last_layer, extra=extra)


def hand_over(db: Database, job_id: str, *, actor: str, reason: str) -> Job:
    """A ``printing`` job now belongs to the machine (``HANDED_OVER``): its owner changes, its state does not;
    a ``job.state`` event (printing to printing, ``detail.handed_over``) records it."""
    with db.write() as cur:
        job = _get(cur, job_id)
        if job.state is not S.printing:
            raise CheckFailed(f"job {job_id} is {job.state.value}: only a printing job can be handed over")
        cur.execute("UPDATE jobs SET owner = ?, reason = ?, updated_utc = ? WHERE job_id = ? AND state = ?",
                    (HANDED_OVER, reason, _iso(_now()), job_id, S.printing.value))
        new = _get(cur, job_id)
        append(cur, job.case_id, _event(new, S.printing, S.printing, reason, None, None, {"handed_over": True}),
               actor)
        return new


def get_in(cur, job_id: str) -> Job:
    """``get`` inside the caller's transaction (InputError when the job does not exist)."""
    return _get(cur, job_id)


def record_progress(db: Database, job_id: str, *, last_line: int | None = None,
                    last_layer: int | None = None) -> None:
    """Store the last line/layer the printer confirmed (no trace event: not a state change)."""
    sets, params = ["updated_utc = ?"], [_iso(_now())]
    if last_line is not None:
        sets.append("last_line = ?")
        params.append(last_line)
    if last_layer is not None:
        sets.append("last_layer = ?")
        params.append(last_layer)
    with db.write() as cur:
        cur.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE job_id = ? AND state IN (?, ?, ?)",
                    (*params, job_id, *(x.value for x in IN_FLIGHT)))


def get(db: Database, job_id: str) -> Job:
    with db.read() as cur:
        return _get(cur, job_id)


def list_jobs(db: Database, states: Iterable[JobState | str] | None = None,
              printer_id: str | None = None) -> list[Job]:
    """Jobs in creation order, optionally only those in ``states`` and/or on ``printer_id``."""
    sql, params = f"SELECT {_COLS} FROM jobs WHERE 1 = 1", []
    if states is not None:
        vals = [JobState(s).value for s in states]
        if not vals:
            return []
        sql += f" AND state IN ({', '.join('?' for _ in vals)})"
        params += vals
    if printer_id is not None:
        sql += " AND printer_id = ?"
        params.append(printer_id)
    with db.read() as cur:
        return [_job(r) for r in cur.execute(sql + " ORDER BY job_no", tuple(params)).fetchall()]


def claim_next(db: Database, printer_id: str, owner: str, *, actor: str | None = None) -> Job | None:
    """The oldest queued job for ``printer_id`` moved to ``preparing`` and owned by ``owner``, or None.
    Atomic: of several claimants of one job exactly one gets it."""
    with db.write() as cur:
        r = cur.execute(f"SELECT {_COLS} FROM jobs WHERE state = ? AND printer_id = ? ORDER BY job_no LIMIT 1",
                        (S.queued.value, printer_id)).fetchone()
        if r is None:
            return None
        return _transition(cur, _job(r), S.preparing, actor=actor or actor_of(owner), owner=owner)


def actor_of(owner: str) -> str:
    """A trace actor for a daemon owner name (actors are ``[a-z0-9][a-z0-9._-]``)."""
    out = "".join(c if c.isalnum() or c in "._-" else "-" for c in owner.lower())[:64]
    return out if out and out[0].isalnum() else "queue"


def request_cancel(db: Database, job_id: str, *, actor: str, reason: str | None = None) -> Job:
    """Cancel a queued job at once; for a running one set the request its worker honours (the printer is
    told to cancel). Refuses (CheckFailed) a job that has already ended."""
    with db.write() as cur:
        job = _get(cur, job_id)
        if job.state in TERMINAL:
            raise CheckFailed(f"job {job_id} has already ended ({job.state.value}); nothing to cancel")
        if job.state is S.queued:
            return _transition(cur, job, S.cancelled, actor=actor, reason=reason or f"cancelled by {actor}")
        if job.handed_over:
            raise CheckFailed(f"job {job_id} runs on the machine itself (hot folder): fabctl cannot stop it",
                              hint=f"stop it at the machine, then: fabctl queue outcome {job_id} --state cancelled "
                                   "--reason TEXT")
        if not job.cancel_requested:
            cur.execute("UPDATE jobs SET cancel_requested = 1, cancel_by = ?, updated_utc = ? WHERE job_id = ?",
                        (actor, _iso(_now()), job_id))
            append(cur, job.case_id, JobCancelRequested(job_id=job_id, state=job.state.value), actor)
        return _get(cur, job_id)


def requeue(db: Database, job_id: str, *, actor: str) -> Job:
    """A new queued job doing what ``job_id`` (interrupted, failed or cancelled) did; it references the old
    one (``requeue_of``). Nothing is resumed: the new job starts from the beginning."""
    with db.write() as cur:
        old = _get(cur, job_id)
        if old.state not in _ENDS:
            raise CheckFailed(f"job {job_id} is {old.state.value}; only an interrupted, failed or cancelled "
                              "job can be re-queued", hint="a done job is finished; a running one is running")
        return _insert(cur, case_id=old.case_id, printer_id=old.printer_id, resin_id=old.resin_id,
                       lot=old.lot, actor=actor, queued=True, owner=None, kind=old.kind,
                       job_file=old.job_file, requeue_of=old.job_id)


# ---- printer leases --------------------------------------------------------------------------------------

def _lease(cur, printer_id: str) -> tuple[str, datetime] | None:
    r = cur.execute("SELECT owner, expires_utc FROM printer_leases WHERE printer_id = ?",
                    (printer_id,)).fetchone()
    return (r[0], datetime.fromisoformat(r[1])) if r else None


def acquire_printer(db: Database, printer_id: str, owner: str, ttl_s: float) -> bool:
    """Take ``printer_id`` for ``owner`` for ``ttl_s`` seconds if nobody else holds a live lease on it."""
    if ttl_s <= 0:
        raise InputError(f"lease ttl_s {ttl_s} must be > 0")
    with db.write() as cur:
        now = _now()
        held = _lease(cur, printer_id)
        if held and held[0] != owner and held[1] > now:
            return False
        cur.execute("DELETE FROM printer_leases WHERE printer_id = ?", (printer_id,))
        cur.execute("INSERT INTO printer_leases (printer_id, owner, acquired_utc, renewed_utc, expires_utc)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (printer_id, owner, _iso(now), _iso(now), _iso(now + timedelta(seconds=ttl_s))))
        return True


def renew_printer(db: Database, printer_id: str, owner: str, ttl_s: float) -> bool:
    """Extend ``owner``'s lease; False when the lease is no longer ``owner``'s (the printer was taken)."""
    with db.write() as cur:
        now = _now()
        held = _lease(cur, printer_id)
        if not held or held[0] != owner:
            return False
        cur.execute("UPDATE printer_leases SET renewed_utc = ?, expires_utc = ? WHERE printer_id = ?",
                    (_iso(now), _iso(now + timedelta(seconds=ttl_s)), printer_id))
        return True


def release_printer(db: Database, printer_id: str, owner: str) -> None:
    with db.write() as cur:
        cur.execute("DELETE FROM printer_leases WHERE printer_id = ? AND owner = ?", (printer_id, owner))


def printer_owner(db: Database, printer_id: str) -> str | None:
    """Who holds a live lease on ``printer_id`` (a daemon or a direct print), or None."""
    with db.read() as cur:
        held = _lease(cur, printer_id)
    return held[0] if held and held[1] > _now() else None


def recover(db: Database, *, actor: str, previous_owner: str | None = None,
            printer_id: str | None = None) -> list[Job]:
    """Mark ``interrupted`` every in-flight job whose owner no longer holds its printer's live lease (or whose
    owner is ``previous_owner``: this daemon's earlier incarnation), with the last confirmed line or layer.
    Never resumes or restarts anything. Returns the jobs it marked."""
    out = []
    with db.write() as cur:
        now = _now()
        states = tuple(s.value for s in IN_FLIGHT)
        sql = f"SELECT {_COLS} FROM jobs WHERE state IN (?, ?, ?)"
        params: tuple = states
        if printer_id is not None:
            sql, params = sql + " AND printer_id = ?", (*states, printer_id)
        for r in cur.execute(sql + " ORDER BY job_no", params).fetchall():
            job = _job(r)
            if job.handed_over:
                continue  # the machine runs it; a person records its outcome
            held = _lease(cur, job.printer_id)
            alive = held is not None and held[0] == job.owner and held[1] > now
            if alive and job.owner != previous_owner:
                continue
            why = ("its owner restarted" if alive or job.owner == previous_owner
                   else "its owner's printer lease expired")
            where = (f"; last confirmed line {job.last_line}" if job.last_line is not None else "") + \
                    (f"; last confirmed layer {job.last_layer}" if job.last_layer is not None else "")
            out.append(_transition(cur, job, S.interrupted, actor=actor,
                                   reason=f"{why} (owner {job.owner}) while {job.state.value}{where}; "
                                          "not resumed: re-queue it with `fabctl queue requeue`"))
    return out
