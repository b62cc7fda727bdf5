"""The lock screen as logind's LockedHint tells it (wlroots compositors say nothing of it themselves): read from a
real dbus-daemon with a stand-in logind on it, and false, quietly, where there is no logind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.dbus_bus import PrivateBus, StandInLogind

from tracker.recording.sources import logind
from tracker.recording.sources.logind import LockedHint


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[PrivateBus]:
    started = PrivateBus(tmp_path)
    yield started
    started.stop()


def test_the_hint_is_followed_and_asked_at_most_every_few_seconds(bus: PrivateBus,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    login = StandInLogind(bus)
    hint = LockedHint(bus.address)
    try:
        assert hint.locked() is False
        login.locked = True
        assert hint.locked() is False  # asked again only after CHECK_SECONDS
        monkeypatch.setattr(logind, "CHECK_SECONDS", 0.0)
        assert hint.locked() is True
        login.locked = False
        assert hint.locked() is False
        # The session is looked up once; each check after that is one property read.
        assert login.calls.count("GetSession") + login.calls.count("GetSessionByPID") == 1
    finally:
        hint.close()
        login.stop()


def test_without_logind_the_screen_counts_as_unlocked_and_logind_is_not_asked_again(
        bus: PrivateBus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logind, "CHECK_SECONDS", 0.0)
    hint = LockedHint(bus.address)
    try:
        assert [hint.locked() for _ in range(3)] == [False, False, False]
        assert hint._gave_up
    finally:
        hint.close()


def test_without_a_system_bus_the_screen_counts_as_unlocked(tmp_path: Path) -> None:
    hint = LockedHint(f"unix:path={tmp_path / 'no-bus'}")
    assert hint.locked() is False
    hint.close()
