"""Which source `--source auto` opens: by what a Wayland compositor really offers, never Xwayland's DISPLAY in a
Wayland session; and one plain sentence when nothing can be read. The real compositors are in the tests of each
Wayland source; here, what the choice is made of."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tracker.recording.sources import SourceUnavailable
from tracker.recording.sources.choose import WaylandSession, choose_source, wayland_candidates

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sessions")


def names(session: WaylandSession) -> list[str]:
    return [name for name, _why in wayland_candidates(session)]


def test_a_wlroots_compositor_is_read_through_its_toplevel_protocol_first() -> None:
    offers = {"wl_compositor": 4, "zwlr_foreign_toplevel_manager_v1": 3, "wl_seat": 7}
    assert names(WaylandSession("sway", offers, frozenset())) == ["wayland-wlr"]
    # Hyprland on a machine where Plasma is installed too: what the compositor offers comes first.
    assert names(WaylandSession("Hyprland", offers, frozenset({"org.kde.KWin"}))) == ["wayland-wlr", "kwin"]


def test_kwin_and_gnome_shell_are_found_on_the_bus_whatever_the_desktop_variable_says() -> None:
    offers = {"wl_compositor": 5, "ext_idle_notifier_v1": 1}
    assert names(WaylandSession("", offers, frozenset({"org.kde.KWin"}))) == ["kwin"]
    assert names(WaylandSession("", offers, frozenset({"org.gnome.Shell"}))) == ["gnome"]
    assert names(WaylandSession("ubuntu:GNOME", None, frozenset())) == ["gnome"]
    assert names(WaylandSession("KDE", offers, frozenset())) == ["kwin"]


def test_a_desktop_that_offers_nothing_readable_has_no_candidate() -> None:
    assert names(WaylandSession("weston", {"wl_compositor": 4, "xdg_wm_base": 2}, frozenset())) == []


def test_a_wayland_session_without_a_readable_compositor_is_one_sentence_naming_it_and_xwayland(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Xwayland's DISPLAY is set, as in every such session: it must not be taken for the desktop.
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-nowhere")
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "Weston")
    monkeypatch.setenv("DISPLAY", ":1")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    with pytest.raises(SourceUnavailable) as raised:
        choose_source("auto", lambda message: None)
    message = str(raised.value)
    assert "Weston" in message and "--source x11" in message and "Xwayland" in message
    assert "\n" not in message and message.endswith(".")


def test_a_stale_wayland_display_in_an_x11_session_falls_back_to_x11(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-gone")
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    monkeypatch.setenv("DISPLAY", ":999")  # no X server there either: the X11 source's own sentence says so
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    with pytest.raises(SourceUnavailable, match=":999"):
        choose_source("auto", lambda message: None)
