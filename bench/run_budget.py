"""CPU per sample and peak memory of `tracker run`, next to a bare python-xlib loop, in the same run.

Starts its own Xvfb + openbox desktop and InfluxDB 1.x on loopback (Debian packages xvfb, openbox,
xterm, xdotool, influxdb), runs both for the same time at the same rate, and prints the numbers.
Budget (issue 2): tracker at most 3x the bare loop's CPU per sample, and at most 60 MB peak RSS.

    .venv/bin/python bench/run_budget.py [--seconds 60] [--interval 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import Desktop, InfluxDB1  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The bare loop: the same X properties tracker reads, once per interval, and nothing else.
BARE_LOOP = textwrap.dedent("""
    import sys, time
    from Xlib import X, display
    d = display.Display()
    root = d.screen().root
    active, name, utf8, wm_class = (d.intern_atom(a) for a in
        ("_NET_ACTIVE_WINDOW", "_NET_WM_NAME", "UTF8_STRING", "WM_CLASS"))
    interval, end = float(sys.argv[1]), time.monotonic() + float(sys.argv[2])
    next_tick = time.monotonic()
    while time.monotonic() < end:
        prop = root.get_full_property(active, X.AnyPropertyType)
        if prop and prop.value[0]:
            window = d.create_resource_object("window", prop.value[0])
            window.get_full_property(name, utf8)
            window.get_wm_class()
            d.screen().root.screensaver_query_info() if hasattr(root, "screensaver_query_info") else None
        next_tick += interval
        time.sleep(max(0, next_tick - time.monotonic()))
""")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of all threads of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(argv: list[str], env: dict[str, str], seconds: float) -> tuple[float, float]:
    """CPU seconds and peak RSS (MB) of a process over `seconds`, read just before it would exit."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(2.0)  # start-up (imports) is not per-sample cost: measure the steady state
    start_cpu = cpu_seconds(process.pid)
    time.sleep(seconds)
    cpu = cpu_seconds(process.pid) - start_cpu
    rss = peak_rss_mb(process.pid)
    process.terminate()
    _, err = process.communicate(timeout=30)
    if process.returncode not in (0, -15):
        print(err.decode()[-2000:], file=sys.stderr)
    return cpu, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    samples = args.seconds / args.interval
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        (base / "desktop").mkdir()
        (base / "influx").mkdir()
        desktop = Desktop(base / "desktop").start()
        influx = InfluxDB1(base / "influx").start()
        try:
            influx.create_database("bench")
            window = desktop.open_window("BenchApp", "a window being measured")
            desktop.activate(window)
            env = desktop.env | {
                "TRACKER_HOME": str(base / "home"),
                "TRACKER_INFLUX_URL": influx.url,
                "TRACKER_INFLUX_BUCKET": "bench",
            }
            bare_cpu, bare_rss = measure([sys.executable, "-c", BARE_LOOP, str(args.interval),
                                          str(args.seconds + 10)], env, args.seconds)
            tracker = str(Path(sys.executable).with_name("tracker"))
            run_cpu, run_rss = measure([tracker, "run", "--quiet", "--source", "x11",
                                        "--interval", str(args.interval)], env, args.seconds)
            points = influx.rows('SELECT count("score") FROM "activity"', "bench")
        finally:
            influx.stop()
            desktop.stop()
    bare_ms = bare_cpu / samples * 1000
    run_ms = run_cpu / samples * 1000
    print(f"samples measured: {samples:.0f} at {1 / args.interval:g} Hz over {args.seconds:g} s")
    print(f"bare python-xlib loop: {bare_ms:.3f} ms CPU per sample, peak RSS {bare_rss:.1f} MB")
    print(f"tracker run:           {run_ms:.3f} ms CPU per sample, peak RSS {run_rss:.1f} MB")
    print(f"ratio: {run_ms / bare_ms if bare_ms else float('inf'):.2f}x (budget 3x); "
          f"RSS budget 60 MB: {'ok' if run_rss <= 60 else 'OVER'}")
    print(f"points in InfluxDB: {points[0]['count'] if points else 0}")


if __name__ == "__main__":
    main()
