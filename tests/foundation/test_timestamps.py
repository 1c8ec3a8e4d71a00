"""The stores' time text (ISO-8601 UTC with microseconds and `Z`) and its reading back to epoch seconds."""

from __future__ import annotations

import time

import pytest

from recsys.timestamps import epoch_of, iso_at, now_iso


def test_written_times_read_back_to_the_same_instant() -> None:
    for epoch_s in (0.0, 1_700_000_000.123456, 1_790_000_000.5):
        text = iso_at(epoch_s)
        assert text.endswith("Z")
        assert epoch_of(text) == pytest.approx(epoch_s, abs=1e-6)
    assert epoch_of(now_iso()) > 1_700_000_000


def test_written_times_sort_in_time_order_as_text() -> None:
    instants = [1_700_000_000.0, 1_700_000_000.000001, 1_700_000_009.5, 1_700_000_010.0, 2_000_000_000.0]
    texts = [iso_at(t) for t in instants]
    assert sorted(texts) == texts


@pytest.fixture
def far_from_utc(monkeypatch):
    """The process's local time zone set to one five hours off UTC (then put back)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("text", "epoch_s"),
    [
        ("1970-01-01T00:00:00Z", 0.0),
        ("1970-01-01T00:00:00", 0.0),  # no zone: UTC, not the machine's local time
        ("1970-01-01T01:00:00+01:00", 0.0),
        ("2026-11-24T10:00:00.250000Z", 1_795_514_400.25),
    ],
)
def test_iso_forms_read_as_utc_whatever_the_local_zone(text: str, epoch_s: float, far_from_utc) -> None:
    assert epoch_of(text) == epoch_s


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "1700000000"])
def test_text_that_is_no_time_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        epoch_of(text)
