"""`tracker run --metrics-listen`: a real Prometheus scrapes it, and every query of the Prometheus dashboard
answers; addresses that would expose what you do, or cannot be used, stop the run with one sentence."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers.servers import InfluxDB1, Prometheus, free_port, http, wait_until
from prometheus_client import CollectorRegistry, generate_latest

from tracker.commands import cli
from tracker.model import STATE_AWAY, Record
from tracker.recording.metrics import CONNECTION_TIMEOUT, MAX_CONNECTIONS, TrackerMetrics, start_metrics
from tracker.recording.recorder import Step

TRACKER = str(Path(sys.executable).with_name("tracker"))
DASHBOARD = json.loads((Path(__file__).resolve().parent.parent / "grafana" / "tracker-prometheus.json")
                       .read_text(encoding="utf-8"))
# What Grafana puts for its interval variables, for a short range with a 1 s scrape interval.
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$__interval": "10s", "$__range": "5m"}


def run_tracker(*args: str) -> Result:
    """`tracker run` in this process: for runs that stop before any sample is read."""
    return CliRunner().invoke(cli, ["run", "--source", "demo", "--for", "5s", "--quiet", *args])


def assert_one_sentence(result: Result, *words: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


def nothing_listens(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def dashboard_queries() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]


def with_grafana_variables(query: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    assert "$" not in query, f"a variable the test does not fill: {query}"
    return query


# -- a real Prometheus --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_prometheus_sees_samples_and_time_per_category_grow_and_every_dashboard_query_answers(
        prometheus: Prometheus, influxdb1: InfluxDB1, influx_database: str) -> None:
    env = dict(os.environ, TRACKER_INFLUX_URL=influxdb1.url, TRACKER_INFLUX_BUCKET=influx_database)
    run = subprocess.Popen(
        [TRACKER, "run", "--source", "demo", "--interval", "0.2", "--for", "8s", "--quiet",
         "--metrics-listen", prometheus.target],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        def moving(series: str) -> None:
            # The highest value of the last minute: still there if a busy machine let the 8 s run end already.
            promql = f"sum(max_over_time({series}[1m]))"
            wait_until(lambda: prometheus.value(promql) > 0, 30, f"{series} above 0")
            before = prometheus.value(promql)
            wait_until(lambda: prometheus.value(promql) > before, 15, f"{series} growing")

        moving("tracker_samples_total")
        moving('tracker_activity_seconds_total{state="active"}')
        # Every query at the last scrape: once tracker has stopped, its series go stale and "now" finds nothing.
        scrapes = prometheus.query("tracker_samples_total[1m]")[0]["values"]
        evaluated_at = max(float(moment) for moment, _ in scrapes)
        for query in dashboard_queries():
            promql = with_grafana_variables(query)
            assert prometheus.query(promql, at=evaluated_at), f"the dashboard query {promql!r} gave no data"
        categories = {series["metric"]["category"] for series in
                      prometheus.query("tracker_activity_seconds_total", at=evaluated_at)}
        assert categories and all(categories), categories
        # Only category and state: no title, URL or app label reaches Prometheus.
        labels = {label for series in prometheus.query('{__name__=~"tracker_.*"}', at=evaluated_at)
                  for label in series["metric"]}
        assert labels <= {"__name__", "job", "instance", "category", "state", "result", "le", "version"}, labels
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr
    assert "Traceback" not in stdout + stderr


@pytest.mark.slow
def test_allow_remote_serves_on_every_interface() -> None:
    port = free_port()
    run = subprocess.Popen(
        [TRACKER, "run", "--source", "demo", "--interval", "0.2", "--for", "60s", "--quiet",
         "--metrics-listen", f"0.0.0.0:{port}", "--metrics-allow-remote"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        # Bound on every interface; this test only ever connects to loopback.
        page = wait_until(lambda: http("GET", f"http://127.0.0.1:{port}/metrics", timeout=2)[1].decode(), 30,
                          "the metrics page")
        assert "tracker_build_info{" in page and "process_resident_memory_bytes" in page
    finally:
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr


# -- who is answered -------------------------------------------------------------------------------------------

@pytest.fixture
def serving(request: pytest.FixtureRequest) -> Iterator[str]:
    """The metrics endpoint served in this process on a free loopback port (allow_remote: the test's param,
    default False); its base URL."""
    port = free_port()
    metrics = start_metrics(f"127.0.0.1:{port}", getattr(request, "param", False))
    yield f"http://127.0.0.1:{port}"
    metrics.close()


@pytest.mark.parametrize(("path", "host", "status"), [
    ("/metrics", None, 200),
    ("/metrics", "localhost:{port}", 200),
    ("/metrics", "127.0.0.1:{port}", 200),
    ("/metrics", "[::1]:{port}", 200),
    ("/metrics", "LOCALHOST", 200),
    # DNS rebinding: a web page's own name, made to resolve to 127.0.0.1, arrives as the Host header.
    ("/metrics", "attacker.example:{port}", 403),
    ("/metrics", "attacker.example", 403),
    ("/metrics", "127.0.0.1.attacker.example:{port}", 403),
    ("/metrics", "localhost.attacker.example", 403),
    ("/metrics", "10.0.0.1:{port}", 403),
    ("/", None, 404),
    ("/metricsx", None, 404),
    ("/metrics/", None, 404),
    ("/favicon.ico", None, 404),
])
def test_only_metrics_is_answered_and_only_to_a_loopback_host_name(serving: str, path: str, host: str | None,
                                                                   status: int) -> None:
    headers = {} if host is None else {"Host": host.format(port=serving.rpartition(":")[2])}
    answer, body = http("GET", serving + path, headers=headers)
    assert answer == status
    assert (b"tracker_samples_total" in body) == (status == 200)


@pytest.mark.parametrize("serving", [True], indirect=True)
def test_with_allow_remote_any_host_name_is_answered_but_only_at_metrics(serving: str) -> None:
    assert http("GET", serving + "/metrics", headers={"Host": "tracker.lan:9184"})[0] == 200
    assert http("GET", serving + "/", headers={"Host": "tracker.lan:9184"})[0] == 404


def _idle_connections(url: str, count: int) -> list[socket.socket]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return [socket.create_connection((host, int(port)), timeout=30) for _ in range(count)]


def _closed_by_the_server(connection: socket.socket) -> bool:
    """True once the server closed it (EOF, or a reset when it closed with our bytes unread)."""
    with connection:
        try:
            return connection.recv(1) == b""
        except ConnectionResetError:
            return True


@pytest.mark.slow
def test_idle_connections_are_closed_and_the_endpoint_answers_again(serving: str) -> None:
    crowd = _idle_connections(serving, 3 * MAX_CONNECTIONS)
    assert all(_closed_by_the_server(connection) for connection in crowd)
    assert http("GET", serving + "/metrics")[0] == 200


@pytest.mark.slow
def test_a_request_sent_a_byte_a_second_is_cut_off_at_the_deadline(serving: str) -> None:
    host, _, port = serving.removeprefix("http://").rpartition(":")
    request = f"GET /metrics HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {'x' * 100}\r\n\r\n".encode()
    cut_off_by = time.monotonic() + CONNECTION_TIMEOUT + 3
    with socket.create_connection((host, int(port))) as connection:
        connection.settimeout(1)  # the pace: a byte each time the server has said nothing for a second
        for byte in request:
            assert time.monotonic() < cut_off_by, "still open, a byte a second, past the deadline"
            try:
                answer = connection.recv(1)
            except TimeoutError:
                connection.send(bytes([byte]))
                continue
            assert answer == b"", "answered a request it never had whole"
            return
    raise AssertionError("the whole request went in, a byte a second")


@pytest.mark.slow
def test_a_crowd_of_idle_connections_under_a_256_descriptor_limit_does_not_stop_sending(
        influxdb1: InfluxDB1, influx_database: str) -> None:
    """247 idle connections used to take every descriptor of macOS's default 256, and sending stopped."""
    port = free_port()
    env = dict(os.environ, TRACKER_INFLUX_URL=influxdb1.url, TRACKER_INFLUX_BUCKET=influx_database)
    run = subprocess.Popen(
        [TRACKER, "run", "--source", "demo", "--interval", "0.2", "--for", "120s", "--quiet",
         "--metrics-listen", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)))
    url = f"http://127.0.0.1:{port}"

    def points() -> int:
        rows = influxdb1.rows('SELECT count("duration") FROM "activity"', influx_database)
        return int(rows[0]["count"]) if rows else 0

    try:
        wait_until(lambda: http("GET", url + "/metrics", timeout=2)[0] == 200, 30, "the metrics page")
        crowd = _idle_connections(url, 300)
        sent_during = points()
        wait_until(lambda: points() > sent_during, 30, "points reaching InfluxDB while the crowd waits")
        assert all(_closed_by_the_server(connection) for connection in crowd)
        assert http("GET", url + "/metrics", timeout=5)[0] == 200
        sent_after = points()
        wait_until(lambda: points() > sent_after, 30, "points reaching InfluxDB after the crowd")
    finally:
        run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr
    assert "Traceback" not in stdout + stderr and "Too many open files" not in stdout + stderr


# -- refused before anything starts ------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["0.0.0.0:{port}", "192.0.2.1:{port}", "[::]:{port}", "example.com:{port}"])
def test_an_address_other_than_loopback_is_refused_saying_why(address: str) -> None:
    port = free_port()
    message = assert_one_sentence(run_tracker("--metrics-listen", address.format(port=port)),
                                  "not a loopback address", "no authentication", "--metrics-allow-remote")
    assert message.count(". ") == 0, "one sentence"
    assert nothing_listens(port)


def test_an_address_other_than_loopback_in_config_yaml_is_refused_too(tracker_home: Path) -> None:
    config = tracker_home / "config" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(f"metrics_listen: 0.0.0.0:{free_port()}\n", encoding="utf-8")
    assert_one_sentence(run_tracker(), "not a loopback address")


@pytest.mark.parametrize("address", ["9184", "localhost", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000",
                                     "::1:9184", "[::1]9184"])
def test_an_address_that_is_not_host_and_port_is_one_sentence(address: str) -> None:
    assert_one_sentence(run_tracker("--metrics-listen", address), "is not HOST:PORT", "127.0.0.1:9184")


def test_a_port_in_use_is_one_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_sentence(run_tracker("--metrics-listen", f"127.0.0.1:{port}"), "in use")


def test_without_prometheus_client_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import prometheus_client raises ImportError
    assert_one_sentence(run_tracker("--metrics-listen", f"127.0.0.1:{free_port()}"),
                        f"{sys.executable} -m pip install 'prometheus_client>=0.20'")


_LOADS_PROMETHEUS_CLIENT = """
import sys
from tracker.commands import cli
try:
    cli.main(sys.argv[1:], prog_name="tracker", standalone_mode=False)
finally:
    print("prometheus_client" in sys.modules)
"""


@pytest.mark.slow
@pytest.mark.parametrize("command", [["run", "--source", "demo", "--for", "0.5s", "--quiet"], ["report"],
                                     ["config", "show"], ["--help"]], ids=" ".join)
def test_prometheus_client_is_not_imported_without_metrics_listen(command: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", _LOADS_PROMETHEUS_CLIENT, *command], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"


# -- the metrics themselves --------------------------------------------------------------------------------

def _step(category: str, score: float, duration: float, state: str = "active") -> Step:
    record = Record(time_ms=0, duration=duration, host="h", app="App", activity="secret title", category=category,
                    score=score, state=state, title="secret title", url="https://secret.example/")
    return Step(record=record, rule=None, away_since_ms=None, final_until_ms=0)


def test_time_per_category_counts_recorded_seconds_and_the_pulse_counter_takes_negative_scores() -> None:
    metrics = TrackerMetrics(CollectorRegistry())
    metrics.observe(_step("Fun", -2, 1.0))
    metrics.observe(_step("Deep Work", 2, 3.0))
    metrics.observe(_step("Away", 0, 5.0, STATE_AWAY))
    page = generate_latest(metrics.registry).decode()

    def value(series: str) -> float:
        found = re.search(rf"^{re.escape(series)} (\S+)$", page, re.MULTILINE)
        assert found, f"{series} not in {page}"
        return float(found.group(1))

    assert value("tracker_samples_total") == 3
    assert value('tracker_activity_seconds_total{category="Deep Work",state="active"}') == 3.0
    assert value('tracker_activity_seconds_total{category="Away",state="away"}') == 5.0
    # Pulse 0 for a second of Fun, 100 for three of Deep Work: (0 + 300) / 4 active seconds = 75.
    pulse_seconds = value('tracker_pulse_seconds_total{category="Fun"}') + value(
        'tracker_pulse_seconds_total{category="Deep Work"}')
    assert pulse_seconds / 4.0 == 75.0
    assert value("tracker_score") == 0
    assert "secret" not in page and "App" not in page
    assert "tracker_sends_total" not in page, "no send metrics without InfluxDB"
