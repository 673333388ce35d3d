"""The pipeline runner: intake → validate → orient → support → slice → job → transport, with gates and a
stage cache (DESIGN.md §2). ``prepare`` and ``run_transport`` are what ``fabctl print`` and the queue daemon
call; ``gates.check`` is the one gate function."""

__all__ = ["Prepared", "StageRecord", "prepare", "run_transport"]


def __getattr__(name: str):
    """Lazy: ``fabctl slice`` imports ``pipeline.jobfile`` without the runner (validate, trimesh: ~1 s)."""
    if name in ("Prepared", "StageRecord", "prepare"):
        from fabctl.pipeline import runner
        return getattr(runner, name)
    if name == "run_transport":
        from fabctl.pipeline.transport_run import run_transport
        return run_transport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
