"""The free-text guard: identifying patterns are refused (exit 2) naming the field and the kind, never the
text; plain technical notes and equipment ids pass."""

from __future__ import annotations

import pytest

from fabctl.errors import InputError
from fabctl.records import privacy


@pytest.mark.parametrize(("text", "kind"), [
    ("born 12/03/1961", "a date"),
    ("1961-03-12", "a date"),
    ("12.3.61", "a date"),
    ("12 March 1961", "a date"),
    ("March 12, 1961", "a date"),
    ("DOB unknown", "a date"),
    ("John Smith", "person-name"),
    ("removed by Anna Maria Rossi", "person-name"),
    ("Dr X checked", "title and name"),
    ("mrs Jones", "title and name"),
    ("send to a.b@example.org", "e-mail"),
    ("call +44 20 7946 0958", "phone"),
    ("tel 555-867-5309", "phone"),
    ("ssn 123-45-6789", "national-id"),
    ("id 850312123456", "national-id"),
])
def test_identifying_text_is_refused(text: str, kind: str) -> None:
    with pytest.raises(InputError) as exc:
        privacy.check_text("--support-removal", text)
    assert exc.value.exit_code == 2
    assert kind in exc.value.message and "--support-removal" in exc.value.message
    assert text not in exc.value.message


@pytest.mark.parametrize("text", [
    "flush cut; intaglio untouched", "support nubs sanded, 400 grit", "Flush cut, channel clear",
    "2 nubs on boss removed", "sanded 0.2 mm",
])
def test_technical_notes_pass(text: str) -> None:
    assert privacy.check_text("--support-removal", text) == text


def test_ids() -> None:
    assert privacy.check_id("--sterilizer", "AUTOCLAVE-A3") == "AUTOCLAVE-A3"
    assert privacy.check_id("--ncr", "NCR-2026-014") == "NCR-2026-014"
    assert privacy.check_id("load id", "SPD-A3-2026-11-26-004", allow_dates=True)
    for bad in ("Autoclave A3", "NCR 1", ""):
        with pytest.raises(InputError, match="not an id"):
            privacy.check_id("--sterilizer", bad)
    with pytest.raises(InputError, match="a date"):
        privacy.check_id("--ncr", "NCR-1961-03-12")
    with pytest.raises(InputError, match="one line"):
        privacy.check_text("--support-removal", "a\nb")
