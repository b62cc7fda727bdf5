"""CPU per sample and peak memory of `tracker run`, next to a bare python-xlib loop, in the same run.

Starts its own Xvfb + openbox desktop and InfluxDB 1.x on loopback (Debian packages xvfb, openbox,
xterm, xdotool, influxdb), runs both for the same time at the same rate, and prints the numbers.
Goal (issue 24): tracker at most 1.3x the bare loop's CPU per sample without changes of activity, at most 1.6x
with a change every 2 s (`--switch-every 2`: two windows take the focus in turn), and at most 35 MB peak RSS.

    .venv/bin/python bench/run_budget.py [--seconds 60] [--interval 1] [--rounds 3] [--switch-every SECONDS]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.servers import Desktop, InfluxDB1, free_port, wait_until  # noqa: E402

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


# Seconds the bare loop runs beyond the measured window: the first send may take a while, and the loop must
# still be running when the window closes (both are stopped then).
BARE_LOOP_SPARE = 300


def cpu_seconds(pid: int) -> float:
    """CPU time of all live threads of a process, in nanoseconds from /proc/PID/task/*/schedstat.

    /proc/PID/stat counts in clock ticks (10 ms): a 1 Hz loop uses a few ticks a minute, too coarse to
    compare. Threads keep running for the whole window here, so none is missed by summing live ones.
    """
    total_ns = sum(int((task / "schedstat").read_text().split()[0])
                   for task in Path(f"/proc/{pid}/task").iterdir())
    return total_ns / 1e9


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_together(commands: list[list[str]], env: dict[str, str], seconds: float,
                     steady: Callable[[], bool]) -> list[tuple[float, float]]:
    """CPU seconds and peak RSS (MB) of processes running side by side over the same `seconds`:
    whatever else the machine does then weighs on all of them alike. Measuring starts once `steady()`."""
    processes = [subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for argv in commands]
    # Start-up is not per-sample cost: the imports, and the first send (which loads the HTTP client and
    # asks the server's version) come once. Measure the steady state after them.
    wait_until(steady, 60, "the first send")
    time.sleep(2.0)
    start_cpu = [cpu_seconds(process.pid) for process in processes]
    time.sleep(seconds)
    results = [(cpu_seconds(process.pid) - before, peak_rss_mb(process.pid))
               for process, before in zip(processes, start_cpu, strict=True)]
    if any(process.poll() is not None for process in processes):  # a process gone mid-window: no fair figure
        raise SystemExit(f"{' '.join(commands[[p.poll() is not None for p in processes].index(True)])} "
                         "stopped before the measured window ended")
    for process in processes:
        process.terminate()
        _, err = process.communicate(timeout=30)
        if process.returncode not in (0, -15):
            print(err.decode()[-2000:], file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--vitals-every", default="10s",
                        help="tracker's vitals_every setting (default 10s, as shipped; 0 turns the vitals off)")
    parser.add_argument("--switch-every", type=float, default=0.0, metavar="SECONDS",
                        help="move the focus between two windows this often (default 0: never)")
    parser.add_argument("--metrics", action="store_true",
                        help="also serve the Prometheus endpoint (--metrics-listen on a free loopback port)")
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
            other = desktop.open_window("OtherApp", "another window, in turn")
            desktop.activate(window)
            env = desktop.env | {
                "TRACKER_HOME": str(base / "home"),
                "TRACKER_INFLUX_URL": influx.url,
                "TRACKER_INFLUX_BUCKET": "bench",
            }
            tracker = str(Path(sys.executable).with_name("tracker"))
            # Someone at work: without input tracker holds samples back (they may become away) and sends none.
            done = threading.Event()

            def someone_at_work() -> None:
                while not done.wait(5.0):
                    desktop.touch()

            def switching_windows() -> None:
                windows = [window, other]
                while not done.wait(args.switch_every):
                    windows.reverse()
                    desktop.activate(windows[0])

            threading.Thread(target=someone_at_work, daemon=True).start()
            if args.switch_every > 0:
                threading.Thread(target=switching_windows, daemon=True).start()
            rounds = []
            for number in range(args.rounds):
                host = f"round{number}"
                env["TRACKER_HOME"] = str(base / host)
                (base / host / "config").mkdir(parents=True)
                (base / host / "config" / "config.yaml").write_text(
                    f"host: {host}\nvitals_every: {args.vitals_every}\n")

                def sent(host: str = host) -> bool:
                    query = f'SELECT count("score") FROM "activity" WHERE "host" = \'{host}\''
                    return bool(influx.rows(query, "bench"))

                (bare_cpu, bare_rss), (run_cpu, run_rss) = measure_together(
                    [[sys.executable, "-c", BARE_LOOP, str(args.interval), str(args.seconds + BARE_LOOP_SPARE)],
                     [tracker, "run", "--quiet", "--source", "x11", "--interval", str(args.interval),
                      *(["--metrics-listen", f"127.0.0.1:{free_port()}"] if args.metrics else [])]],
                    env, args.seconds, sent)
                rounds.append((bare_cpu / samples * 1000, run_cpu / samples * 1000, bare_rss, run_rss))
            done.set()
            points = influx.rows('SELECT count("score") FROM "activity"', "bench")
            vitals_points = influx.rows('SELECT count("samples_taken") FROM "tracker"', "bench")
        finally:
            influx.stop()
            desktop.stop()
    print(f"{args.rounds} rounds of {samples:.0f} samples at {1 / args.interval:g} Hz, the bare loop and tracker "
          "side by side, mouse input every 5 s (so tracker sends as it does for someone at work), "
          f"vitals_every {args.vitals_every}" + (", Prometheus endpoint on" if args.metrics else "")
          + (f", the focus moving between two windows every {args.switch_every:g} s" if args.switch_every else
             ", the focus on one window"))
    for number, (bare_ms, run_ms, bare_rss, run_rss) in enumerate(rounds, 1):
        print(f"  round {number}: bare python-xlib loop {bare_ms:.3f} ms CPU per sample ({bare_rss:.1f} MB), "
              f"tracker run {run_ms:.3f} ms ({run_rss:.1f} MB): {run_ms / bare_ms:.2f}x")
    ratio = statistics.median(run_ms / bare_ms for bare_ms, run_ms, _, _ in rounds)
    peak = max(run_rss for *_, run_rss in rounds)
    print(f"points in InfluxDB: {points[0]['count'] if points else 0} samples, "
          f"{vitals_points[0]['count'] if vitals_points else 0} vitals")
    goal = 1.6 if args.switch_every else 1.3
    print(f"tracker run: {ratio:.2f}x a bare python-xlib loop's CPU per sample (goal ≤ {goal}x), peak RSS "
          f"{peak:.1f} MB (goal ≤ 35 MB), {datetime.date.today()}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
