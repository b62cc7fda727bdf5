"""The real peers start and answer: if these fail, every other server test would too."""

from helpers.servers import http


def test_influxdb1_accepts_a_point_and_returns_it(influxdb1, influx_database):
    status, body = http("POST", f"{influxdb1.url}/write?db={influx_database}&precision=ms",
                        b"activity,app=x score=1.5 1700000000000")
    assert status == 204, body
    rows = influxdb1.rows("SELECT score, app FROM activity", influx_database)
    assert rows == [{"time": 1700000000000, "score": 1.5, "app": "x"}]


def test_desktop_focus_follows_xdotool(desktop):
    first = desktop.open_window("SmokeA", "first window")
    second = desktop.open_window("SmokeB", "second window")
    desktop.activate(first)
    assert desktop.active_window() == first
    desktop.activate(second)
    assert desktop.active_window() == second
