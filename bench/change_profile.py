"""Where `tracker run`'s CPU goes when the activity changes often: a profile of the real loop.

Runs the run loop in this process at 1 Hz for `--seconds`, with a source that switches between two windows every
`--switch-every` samples (and is never idle), sending to an InfluxDB 1.x of its own on loopback (Debian package
influxdb), under cProfile; prints the CPU per sample and the functions that took most of it (own time and with
what they call). Compare with --switch-every 0 (never switches). `--parts` instead times each part of the loop
(the source, classification, the recorder, the outbox and history commit, the observers, status.json) in the
loop's thread, without cProfile: at 1 Hz each part runs with cold caches, as in a real run, where a profiler's
figures come from its own overhead as much as from the code.

    .venv/bin/python bench/change_profile.py [--seconds 40] [--switch-every 2] [--top 25] [--parts]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class PartTimes:
    """CPU of the loop's thread in each part, from the warm-up on: wraps the callables of the run's parts."""

    def __init__(self, source: SwitchingSource) -> None:
        self.source = source
        self.nanoseconds: collections.Counter[str] = collections.Counter()

    def timed(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time_ns()
            try:
                return call(*args, **kwargs)
            finally:
                if self.source.samples >= WARM_UP:
                    self.nanoseconds[name] += time.thread_time_ns() - started
        return timed_call

    def wrap(self, parts: Any) -> None:
        parts.classify = self.timed("classify and privacy", parts.classify)
        parts.recorder.step = self.timed("recorder", parts.recorder.step)
        parts.store.outbox.commit = self.timed("outbox commit (SQLite, fsync)", parts.store.outbox.commit)
        parts.store.history.add = self.timed("history", parts.store.history.add)
        parts.store.commit = self.timed("local store, all", parts.store.commit)
        if parts.sender is not None:
            parts.sender.wake = self.timed("sender wake", parts.sender.wake)
        for observer in parts.observers:
            observer.observe = self.timed(f"{type(observer).__name__}", observer.observe)
            observer.tick = self.timed(f"{type(observer).__name__}", observer.tick)
        parts.view.show = self.timed("view", parts.view.show)

    def print(self, samples: int) -> None:
        print("the loop's thread, µs CPU per sample by part (parts within \"local store, all\" indented):")
        for name, nanoseconds in self.nanoseconds.most_common():
            indent = "  " if name in ("outbox commit (SQLite, fsync)", "history") else ""
            print(f"  {indent}{name:32s} {nanoseconds / max(samples, 1) / 1000:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--switch-every", type=int, default=2, help="samples between switches (0: never)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--callers", metavar="PATTERN", help="also print who calls the functions matching PATTERN")
    parser.add_argument("--no-profile", action="store_true",
                        help="no cProfile: the loop thread's CPU per sample as it is (thread_time)")
    parser.add_argument("--parts", action="store_true",
                        help="no cProfile: the loop thread's CPU per sample in each part of the loop")
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
            source.profiling = not (args.no_profile or args.parts)
            choose.open_source = lambda name, notify: source  # type: ignore[assignment]
            runner.open_source = choose.open_source  # type: ignore[attr-defined]
            part_times = PartTimes(source)
            if args.parts:
                open_parts = runner._open_parts
                runner.Run._write_status = part_times.timed("status.json", runner.Run._write_status)  # type: ignore[method-assign]

                def timed_parts(*arguments: Any, **options: Any) -> Any:
                    parts = open_parts(*arguments, **options)
                    part_times.wrap(parts)
                    return parts

                runner._open_parts = timed_parts
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
    how = "under cProfile (all threads; the profile is the loop's thread)" if source.profiling else "(all threads)"
    print(f"{measured} samples after {WARM_UP} of warm-up, switching every {args.switch_every} samples: "
          f"{cpu / max(measured, 1) * 1000:.2f} ms CPU per sample {how}")
    print(f"the loop's thread: {loop_cpu / max(measured, 1) * 1000:.3f} ms CPU per sample")
    if args.parts:
        part_times.print(measured)
    if args.no_profile or args.parts:
        return
    stats = pstats.Stats(profile, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats("tracker/", args.top)
    if args.callers:
        stats.print_callers(args.callers)


if __name__ == "__main__":
    main()
