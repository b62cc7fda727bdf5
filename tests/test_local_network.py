"""No route to host on macOS 15 and later: Local Network privacy blocks a LaunchAgent from reaching an address on
the LAN until allowed, with the same EHOSTUNREACH as a missing route. The message says so, on macOS only, for
private and link-local addresses only. No test sends a packet anywhere but loopback: the unreachable LAN address
is answered by a stand-in for connect(), and "macOS" is tracker's own platform check, replaced."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
from typing import Any

import pytest
from click.testing import CliRunner
from helpers.fault_server import make_records

from tracker import macos_privacy, paths
from tracker.commands import cli
from tracker.macos_privacy import SettingsEntry
from tracker.sending.sinks.noroute import Why, why_unreachable
from tracker.storage.outbox import Outbox

NO_ROUTE = OSError(errno.EHOSTUNREACH, os.strerror(errno.EHOSTUNREACH))
PYTHON = SettingsEntry("Python", "/Library/Frameworks/Python.framework/Versions/3.13/Resources/Python.app")
ADVICE_FOR_THE_SERVICE = (
    "macOS's Local Network privacy may be blocking tracker: allow “Python”"
    " (/Library/Frameworks/Python.framework/Versions/3.13/Resources/Python.app) in System Settings → Privacy &"
    " Security → Local Network, then restart tracker")
ADVICE_IN_A_TERMINAL = (
    "macOS's Local Network privacy may be blocking tracker: allow your terminal (or whatever runs tracker) in System"
    " Settings → Privacy & Security → Local Network, then restart tracker")


@pytest.fixture
def as_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment the LaunchAgent gives its run, and the Python it runs as."""
    monkeypatch.setenv("TRACKER_STARTED_BY", "launchd")
    monkeypatch.setattr(macos_privacy, "service_entry", lambda: PYTHON)


@pytest.mark.parametrize("host", ["10.0.0.5", "172.16.0.1", "172.31.255.254", "192.168.1.20", "169.254.10.1",
                                  "fd12:3456::1", "fe80::1%en0", "::ffff:192.168.1.20"])
def test_no_route_to_a_lan_address_on_macos_names_local_network_privacy(host: str, as_the_service: None) -> None:
    assert NO_ROUTE.errno in (65, 113)  # macOS's and Linux's number for it
    assert why_unreachable(NO_ROUTE, host, on_macos=True) == Why("no route to host", ADVICE_FOR_THE_SERVICE)


@pytest.mark.parametrize("host", ["8.8.8.8", "172.32.0.1", "192.169.0.1", "127.0.0.1", "2001:db8::1"])
def test_no_route_to_an_address_beyond_the_lan_is_only_no_route(host: str, as_the_service: None) -> None:
    assert why_unreachable(NO_ROUTE, host, on_macos=True) == Why("no route to host")


def test_elsewhere_than_macos_no_route_is_only_no_route(as_the_service: None) -> None:
    assert why_unreachable(NO_ROUTE, "192.168.1.20", on_macos=False) == Why("no route to host")


def test_a_name_counts_by_the_addresses_it_resolves_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKER_STARTED_BY", raising=False)  # a tracker run from a terminal

    def resolve(host: str) -> list[str]:
        return {"influx.local": ["fe80::2", "192.168.1.20"], "influx.example.com": ["93.184.216.34"]}.get(host, [])

    assert why_unreachable(NO_ROUTE, "influx.local", on_macos=True, resolve=resolve) == Why(
        "no route to host", ADVICE_IN_A_TERMINAL)
    assert why_unreachable(NO_ROUTE, "influx.example.com", on_macos=True, resolve=resolve) == Why("no route to host")
    assert why_unreachable(NO_ROUTE, "gone.invalid", on_macos=True, resolve=resolve) == Why("no route to host")


def test_other_connection_failures_keep_their_own_words(as_the_service: None) -> None:
    with socket.socket() as closed:  # a loopback port nobody listens on: a real refusal
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(OSError) as refused, socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    assert why_unreachable(refused.value, "192.168.1.20", on_macos=True) == Why(os.strerror(errno.ECONNREFUSED))
    unreachable_network = OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))
    assert why_unreachable(unreachable_network, "192.168.1.20", on_macos=True) == Why(
        os.strerror(errno.ENETUNREACH))


# -- `tracker sync`, end to end ----------------------------------------------------------------------------

LAN_INFLUXDB = "192.168.77.10"


@pytest.fixture
def lan_without_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """connect() to LAN_INFLUXDB fails with EHOSTUNREACH before any packet is sent; loopback works as ever, and any
    other address fails the test."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0]
        if host == LAN_INFLUXDB:
            raise OSError(errno.EHOSTUNREACH, os.strerror(errno.EHOSTUNREACH))
        assert ipaddress.ip_address(host).is_loopback, f"a test tried to reach {host}"
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def sync_to_the_lan(api: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(make_records(3))
    monkeypatch.setenv("TRACKER_INFLUX_URL", f"http://{LAN_INFLUXDB}:8086")
    monkeypatch.setenv("TRACKER_INFLUX_API", api)
    shown = CliRunner().invoke(cli, ["sync"])
    return shown.exit_code, shown.output


@pytest.mark.parametrize("api", ["auto", "v2"])  # auto asks /ping through http.client; v2 writes through urllib3
def test_tracker_sync_from_the_service_on_macos_says_local_network_privacy_may_block_it(
        api: str, lan_without_route: None, as_the_service: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(macos_privacy, "running_on_macos", lambda: True)
    assert sync_to_the_lan(api, monkeypatch) == (
        1, f"Error: InfluxDB at http://{LAN_INFLUXDB}:8086 is unreachable (no route to host);"
           f" {ADVICE_FOR_THE_SERVICE}. 3 samples still waiting.\n")


def test_tracker_sync_on_linux_says_no_route_only(lan_without_route: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(macos_privacy, "running_on_macos", lambda: False)
    assert sync_to_the_lan("auto", monkeypatch) == (
        1, f"Error: InfluxDB at http://{LAN_INFLUXDB}:8086 is unreachable (no route to host). 3 samples still"
           " waiting.\n")


def test_doctor_says_it_in_its_influxdb_line(lan_without_route: None, as_the_service: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from tracker.config import load_settings
    from tracker.tasks.doctor import check_influx

    monkeypatch.setattr(macos_privacy, "running_on_macos", lambda: True)
    monkeypatch.setenv("TRACKER_INFLUX_URL", f"http://{LAN_INFLUXDB}:8086")
    [reachable] = check_influx(load_settings().settings)
    assert (reachable.name, reachable.outcome, reachable.detail, reachable.fix) == (
        "InfluxDB reachable", "problem",
        f"InfluxDB at http://{LAN_INFLUXDB}:8086 is unreachable (no route to host); {ADVICE_FOR_THE_SERVICE}",
        "Allow it in Local Network as the line says, or, if that is not it, check the network's route to the server;"
        " samples wait in the outbox meanwhile.")


def test_the_service_s_log_says_it_once_and_keeps_the_samples(lan_without_route: None, as_the_service: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import threading

    from tracker.config import InfluxSettings
    from tracker.sending.corrections import correcting_sender
    from tracker.ui.live import ActivityLog

    monkeypatch.setattr(macos_privacy, "running_on_macos", lambda: True)
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(make_records(3))
    log = io.StringIO()
    view = ActivityLog(log, "json")  # what `tracker run --quiet --log-file` writes, one JSON line each
    said = threading.Event()

    def notice(text: str) -> None:
        view.notice(text)
        said.set()

    sender = correcting_sender(paths.database_file(), InfluxSettings(url=f"http://{LAN_INFLUXDB}:8086"), notice)
    sender.start()
    try:
        sender.wake()
        assert said.wait(30), "the sender said nothing"
    finally:
        sender.stop(flush=False, timeout=5)
    [line] = [json.loads(line) for line in log.getvalue().splitlines()]
    assert (line["event"], line["message"]) == (
        "notice", f"InfluxDB at http://{LAN_INFLUXDB}:8086 is unreachable (no route to host); {ADVICE_FOR_THE_SERVICE};"
                  " retrying, 3 samples waiting")
    with Outbox(paths.database_file()) as outbox:
        assert outbox.waiting() == 3
