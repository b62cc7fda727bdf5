"""Where `tracker run`'s CPU goes when the activity changes often: a profile of the real loop.

Runs the run loop in this process at 1 Hz for `--seconds`, with a source that switches between two windows every
`--switch-every` samples (and is never idle), sending to an InfluxDB 1.x of its own on loopback (Debian package
influxdb), under cProfile; prints the CPU per sample and the functions that took most of it (own time and with
what they call). Compare with --switch-every 0 (never switches).

    .venv/bin/python bench/change_profile.py [--seconds 40] [--switch-every 2] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.servers import InfluxDB1  # noqa: E402

from tracker.model import Sample, utc_now  # noqa: E402
from tracker.recording.sources.demo import DemoSource  # noqa: E402

WARM_UP = 5  # samples before profiling starts: start-up and the first send are no per-sample cost


class SwitchingSource(DemoSource):
    """Two windows in turn, `every` samples each (0: the first only), someone typing all along."""

    def __init__(self, every: int, profile: cProfile.Profile) -> None:
        super().__init__()
        self.every = every
        self.samples = 0
        self.profile = profile
        self.cpu_at_warm = 0.0  # process CPU when profiling started: start-up is not the loop's cost
        self.thread_cpu_at_warm = 0.0
        self.profiling = True

    def read(self) -> Sample:
        self.samples += 1
        if self.samples == WARM_UP:
            self.cpu_at_warm = time.process_time()
            self.thread_cpu_at_warm = time.thread_time()
            if self.profiling:
                self.profile.enable()
        second = self.every and (self.samples // self.every) % 2
        app, title = (("Code", "main.py — tracker"), ("firefox", "Issues · GitHub — Mozilla Firefox"))[second]
        return Sample(time=utc_now(), app=app, title=title, idle_seconds=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--switch-every", type=int, default=2, help="samples between switches (0: never)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--callers", metavar="PATTERN", help="also print who calls the functions matching PATTERN")
    parser.add_argument("--no-profile", action="store_true",
                        help="no cProfile: the loop thread's CPU per sample as it is (thread_time)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "influx").mkdir()
        influx = InfluxDB1(Path(directory) / "influx").start()
        try:
            influx.create_database("bench")
            os.environ.update(TRACKER_HOME=str(Path(directory) / "home"), TRACKER_INFLUX_URL=influx.url,
                              TRACKER_INFLUX_BUCKET="bench")
            import tracker.recording.runner as runner
            from tracker.commands.run import run
            from tracker.recording.sources import choose

            profile = cProfile.Profile(time.thread_time)  # the CPU of the loop's thread, not the wall clock
            source = SwitchingSource(args.switch_every, profile)
            source.profiling = not args.no_profile
            choose.open_source = lambda name, notify: source  # type: ignore[assignment]
            runner.open_source = choose.open_source  # type: ignore[attr-defined]
            try:
                run.main(["--quiet", "--source", "demo", "--for", f"{args.seconds}s", "--interval",
                          str(args.interval)], standalone_mode=False)
            finally:
                profile.disable()
            cpu = time.process_time() - source.cpu_at_warm
            loop_cpu = time.thread_time() - source.thread_cpu_at_warm
        finally:
            influx.stop()
    measured = source.samples - WARM_UP
    print(f"{measured} samples after {WARM_UP} of warm-up, switching every {args.switch_every} samples: "
          f"{cpu / max(measured, 1) * 1000:.2f} ms CPU per sample under cProfile (all threads; the profile is"
          " the loop's thread)")
    print(f"the loop's thread: {loop_cpu / max(measured, 1) * 1000:.3f} ms CPU per sample")
    if args.no_profile:
        return
    stats = pstats.Stats(profile, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats("tracker/", args.top)
    if args.callers:
        stats.print_callers(args.callers)


if __name__ == "__main__":
    main()
