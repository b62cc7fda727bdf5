"""Every wait is bounded, name resolution too: a resolver that hangs (several nameservers timing out, a broken NSS
module) costs an exchange at most its deadline, says so in one sentence, loses nothing, and leaves at most one
lookup behind per name, which never keeps the process from exiting. A literal IP address is no lookup.

The resolver is made slow for real, for whatever calls socket.getaddrinfo (tests/helpers/slow_resolver.py): in
this process, or from the start of a `tracker` child process."""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from helpers.fault_server import FaultServer, make_records
from helpers.running import TRACKER, RunningTracker, configure_influx, stopped_once
from helpers.servers import timed, wait_until
from helpers.slow_resolver import SlowResolver, child_environment

from tracker import paths
from tracker.commands import cli
from tracker.config import InfluxSettings
from tracker.sending.sinks import RetryLater, resolving
from tracker.sending.sinks.connect import open_sink
from tracker.sending.sinks.deadline import all_ending_within
from tracker.storage.outbox import Outbox

MARGIN = 8.0  # a busy 2-core machine: the bound plus this (a child process starts in about a second)
NEVER = math.inf


@pytest.fixture
def resolver() -> Iterator[SlowResolver]:
    """This process's resolver, slow on the names a test puts in `.slow`; restored afterwards, and the lookups
    left waiting ended, so that no test's threads outlive it. Their late answers stay (resolving keeps them for
    the next attempt): each test has names of its own."""
    slow = SlowResolver().install()
    yield slow
    slow.restore()
    wait_until(lambda: not stuck_lookups(), what="the lookups left waiting to end")


def stuck_lookups() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("tracker-resolve")]


# -- in this process --------------------------------------------------------------------------------------

@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_literal_address_is_no_lookup_and_a_name_is_looked_up_in_a_thread(resolver, api):
    server = FaultServer().start()
    try:
        for host in ("127.0.0.1", "localhost"):
            resolver.calls.clear()
            open_sink(InfluxSettings(url=f"http://{host}:{server.port}", api=api, org="home", timeout=5)).write(
                ["m v=1 1"])
            asked = {thread for name, thread in resolver.calls if name == host}
            if host == "localhost":
                assert asked == {"tracker-resolve localhost"}
            else:
                assert asked == {threading.current_thread().name}
    finally:
        server.stop()
    assert len(server.writes()) == 2


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_name_resolved_after_the_timeout_serves_the_next_attempt(resolver, api):
    server = FaultServer().start()
    resolver.slow[name := f"late-{api}.name"] = 2.5
    sink = open_sink(InfluxSettings(url=f"http://{name}:{server.port}", api=api, org="home", timeout=1))
    try:
        outcome, seconds = timed(lambda: sink.write(["m v=1 1"]))
        assert isinstance(outcome, RetryLater)
        assert str(outcome) == (f"InfluxDB at http://{name}:{server.port} is unreachable "
                                f"(the name {name} could not be resolved within 1 s)")
        assert 0.9 < seconds < 1 + MARGIN
        wait_until(lambda: resolver.finished, what="the late answer")
        sink.write(["m v=1 1"])  # the answer that came late, not a second lookup as slow as the first
    finally:
        sink.close()
        server.stop()
    assert resolver.started == [name] and len(server.writes()) == 1


@pytest.mark.parametrize("api", ["v1", "v2", "auto"])
def test_attempts_on_a_name_that_never_resolves_end_in_time_and_share_one_lookup(resolver, api):
    resolver.slow[name := f"stuck-{api}.name"] = NEVER
    sink = open_sink(InfluxSettings(url=f"http://{name}:8086", api=api, org="home", timeout=0.5))
    for _ in range(4):
        outcome, seconds = timed(lambda: sink.write(["m v=1 1"]))
        assert str(outcome) == (f"InfluxDB at http://{name}:8086 is unreachable "
                                f"(the name {name} could not be resolved within 0.5 s)")
        assert seconds < 0.5 + MARGIN
    assert resolver.started == [name] and stuck_lookups() == [f"tracker-resolve {name}"]


def test_a_cap_on_every_exchange_ends_a_wait_for_a_lookup_at_once(resolver):
    # As a stopping `tracker run` caps what is on the wire: the wait started with an hour to go.
    resolver.slow["capped.name"] = NEVER
    sink = open_sink(InfluxSettings(url="http://capped.name:8086", api="v1", timeout=3600))
    outcomes: list[object] = []
    writing = threading.Thread(target=lambda: outcomes.append(timed(lambda: sink.write(["m v=1 1"]))[0]))
    writing.start()
    wait_until(lambda: resolver.started, what="the lookup")
    capped = time.monotonic()
    with all_ending_within(0.5):
        writing.join(0.5 + MARGIN)
    assert not writing.is_alive() and time.monotonic() - capped < 0.5 + MARGIN
    assert str(outcomes[0]).startswith("InfluxDB at http://capped.name:8086 is unreachable"
                                       " (the name capped.name could not be resolved within ")


def test_lookups_stuck_at_once_are_bounded(resolver):
    names = [f"many-{number}.name" for number in range(resolving.MAX_LOOKUPS + 1)]
    resolver.slow.update(dict.fromkeys(names, NEVER))
    for name in names[:-1]:
        with pytest.raises(resolving.NotResolvedInTime):
            resolving.addresses(name, 80, within=0.05)
    outcome, seconds = timed(lambda: resolving.addresses(names[-1], 80, within=30))
    assert isinstance(outcome, resolving.NotResolvedInTime) and seconds < MARGIN  # at once: no thread more
    assert len(stuck_lookups()) == resolving.MAX_LOOKUPS and names[-1] not in resolver.started


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_name_that_does_not_resolve_says_so_as_before(resolver, api):
    resolver.failing = {"nowhere.name"}
    sink = open_sink(InfluxSettings(url="http://nowhere.name:8086", api=api, org="home", timeout=1))
    with pytest.raises(RetryLater) as caught:
        sink.write(["m v=1 1"])
    assert str(caught.value) == ("InfluxDB at http://nowhere.name:8086 is unreachable"
                                 " (the name nowhere.name does not resolve)")


# -- `tracker` in a child process whose resolver hangs on slow.name ---------------------------------------------

@pytest.fixture
def hanging(tmp_path, tracker_home) -> dict[str, str]:
    """The environment of a `tracker` whose resolver never answers for slow.name; the outbox holds 5 samples."""
    directory = tmp_path / "resolver"
    directory.mkdir()
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(make_records(5))
    return {**child_environment(directory, {"slow.name": NEVER}, tmp_path / "lookups.log", server_wait=2.0),
            "TRACKER_HOME": str(tracker_home)}


def run_tracker(environment: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([TRACKER, *args], env=environment, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    return done, time.monotonic() - started


def waiting_samples() -> int:
    return json.loads(CliRunner().invoke(cli, ["outbox", "--json"]).output)["waiting"]


@pytest.mark.parametrize("api", ["v1", "v2", "auto"])
def test_sync_whose_influxdb_name_never_resolves_ends_by_the_timeout_and_keeps_the_samples(tracker_home, hanging,
                                                                                           api):
    configure_influx(tracker_home, "http://slow.name:8086", api=api)
    done, seconds = run_tracker(hanging, "sync")
    assert done.returncode == 1, done.stderr
    assert (done.stdout + done.stderr).strip().splitlines() == [
        "Error: InfluxDB at http://slow.name:8086 is unreachable (the name slow.name could not be resolved within"
        " 1 s). 5 samples still waiting."]
    assert seconds < 1 + MARGIN
    assert waiting_samples() == 5


def test_doctor_whose_influxdb_name_never_resolves_ends_by_the_timeout(tracker_home, hanging):
    configure_influx(tracker_home, "http://slow.name:8086")
    environment = {name: value for name, value in hanging.items()
                   if name not in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE")}
    done, seconds = run_tracker(environment, "doctor")
    assert done.returncode == 1, done.stderr
    line = next(line for line in done.stdout.splitlines() if "InfluxDB reachable" in line)
    assert line.endswith("InfluxDB at http://slow.name:8086 is unreachable (the name slow.name could not be"
                         " resolved within 1 s)")
    assert "Traceback" not in done.stderr
    assert seconds < 1 + MARGIN
    assert waiting_samples() == 5


def test_import_from_an_aw_server_whose_name_never_resolves_ends_in_one_sentence(tracker_home, hanging):
    done, seconds = run_tracker(hanging, "import", "activitywatch", "--server", "http://slow.name:5600")
    assert done.returncode == 1, done.stderr
    assert (done.stdout + done.stderr).strip().splitlines() == [
        "Error: Cannot reach the ActivityWatch server at http://slow.name:5600 (the name slow.name could not be"
        " resolved within 2 s): check that aw-server is running and the URL is right; nothing was imported."]
    assert seconds < 2 + MARGIN
    assert waiting_samples() == 5  # and nothing added


def test_a_stopping_run_whose_influxdb_name_never_resolves_stops_within_its_bound(tracker_home, tmp_path, hanging):
    # influx.timeout of an hour: only the stop's own bound (10 s of sending) can end the lookup's wait.
    configure_influx(tracker_home, "http://slow.name:8086", timeout="1h", api="v1")
    run = RunningTracker("--source", "demo", "--quiet", env=hanging)
    code, errors, seconds = stopped_once(run, lambda: "slow.name" in (tmp_path / "lookups.log").read_text(),
                                         "a lookup of slow.name")
    assert code == 0, errors
    assert seconds < 10 + MARGIN, seconds  # STOP_SENDING, and the margin
    assert "Traceback" not in errors
    assert waiting_samples() > 5  # nothing lost: the 5 and what the run recorded
