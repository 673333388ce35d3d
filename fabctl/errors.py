"""The FabctlError tree: every failure a user can cause or meet, with its exit code and a hint.

The library raises these and never exits; ``fabctl.cli`` turns them into one ``error: ...`` line, a hint
and the exit code of the CLI contract (DESIGN.md §4):

0 done · 1 internal error (a bug) · 2 bad input or usage · 3 refused by a check or gate ·
4 printer or transport failure · 5 trace integrity failure.
"""

from __future__ import annotations


class FabctlError(Exception):
    """Base of every error fabctl reports to a user. ``str(err)`` names the thing and the limit."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(FabctlError):
    """Bad input or usage: unreadable file, bad profile, unknown case, malformed plan."""

    exit_code = 2


class MeshError(InputError):
    """A mesh file that cannot be read into a trustworthy ``MeshInput``."""


class UnitsError(InputError):
    """A unit that is missing, unknown, or implausible for a guide."""


class ProfileError(InputError):
    """A printer or resin profile that is unreadable or out of range (names file, key and limit)."""


class CaseError(InputError):
    """An unknown case, a bad case id, or a store operation that is not allowed."""


class CheckFailed(FabctlError):
    """A check or gate refused to go on (validation failed, expired lot, sterilization not allowed)."""

    exit_code = 3


class TransportError(FabctlError):
    """A printer or transport failure: port, network, firmware error, job lost."""

    exit_code = 4


class TraceIntegrityError(FabctlError):
    """The trace's hash chain does not verify: a row was edited, deleted, inserted or reordered."""

    exit_code = 5
