"""Made-up but believable activity, for trying tracker and its dashboard without a real history.

One catalogue of apps, sites and titles (kept with the live source tracker.recording.sources.demo, which `tracker run
--source demo` reads) feeds `week_records` too, a synthetic history that `tracker demo` writes to InfluxDB.
Demo points carry the host `DEMO_HOST` and a tag only they carry (`DEMO_TAGS`), so `drop_demo_query()`
removes them again and nothing else: a real machine may be called `demo` too.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

from tracker import PlainError
from tracker.callbacks import Progress
from tracker.lineprotocol import MEASUREMENT, to_line
from tracker.model import AWAY, STATE_ACTIVE, STATE_AWAY, Record
from tracker.recording.sources.demo import LEISURE_MIX, WORK_MIX, ActivityStream, DemoActivity, Page
from tracker.redact import display_url
from tracker.sending.sinks import InfluxSettingsError, require_configured
from tracker.sending.sinks.connect import open_sink

if TYPE_CHECKING:
    from tracker.config import InfluxSettings

DEMO_HOST = "demo"
# The tag that makes a point a demo point: `tracker run` never writes it.
DEMO_TAGS = {"demo": "true"}

@dataclass(frozen=True)
class _Stretch:
    start: datetime
    end: datetime
    activity: DemoActivity
    page: Page
    away: bool = False


def _clock(day: date, hours: float, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone) + timedelta(hours=hours)


def _fill(start: datetime, end: datetime, stream: ActivityStream, rng: random.Random) -> list[_Stretch]:
    """Activities back to back from start to end, with the odd short break away from the desk."""
    stretches: list[_Stretch] = []
    moment = start
    while moment < end:
        activity, page, seconds = stream.next()
        until = min(end, moment + timedelta(seconds=seconds))
        stretches.append(_Stretch(moment, until, activity, page))
        moment = until
        if moment < end and stream.takes_a_break():
            until = min(end, moment + timedelta(minutes=rng.uniform(5, 15)))
            stretches.append(_Stretch(moment, until, activity, page, away=True))
            moment = until
    return stretches


def _away_after(stretches: list[_Stretch], until: datetime) -> _Stretch:
    """Leaving the desk: the last window stays in front while nobody is there."""
    last = stretches[-1]
    return _Stretch(last.end, until, last.activity, last.page, away=True)


def _day(day: date, zone: tzinfo, rng: random.Random) -> list[_Stretch]:
    """One day's stretches in order: a working day on weekdays, a little leisure on weekends."""
    stretches: list[_Stretch] = []
    if day.weekday() < 5:
        start = _clock(day, min(10.5, max(7.75, rng.gauss(9.0, 0.4))), zone)
        lunch = max(start + timedelta(hours=1), _clock(day, rng.gauss(12.3, 0.3), zone))
        back = lunch + timedelta(minutes=rng.uniform(30, 60))
        finish = _clock(day, min(19.5, max(16.0, rng.gauss(17.5, 0.6))), zone)
        stretches += _fill(start, lunch, ActivityStream(rng, WORK_MIX), rng)
        stretches.append(_away_after(stretches, back))
        stretches += _fill(back, finish, ActivityStream(rng, WORK_MIX), rng)
    elif rng.random() < 0.6:
        start = _clock(day, rng.uniform(10, 16), zone)
        stretches += _fill(start, start + timedelta(minutes=rng.uniform(40, 150)),
                           ActivityStream(rng, LEISURE_MIX), rng)
    if rng.random() < 0.3:
        start = _clock(day, rng.uniform(20, 21), zone)
        stretches += _fill(start, start + timedelta(minutes=rng.uniform(30, 120)),
                           ActivityStream(rng, LEISURE_MIX), rng)
    return stretches


def week_records(days: int, host: str = DEMO_HOST, end: datetime | None = None, seed: int = 0,
                 step: float = 1.0) -> Iterator[Record]:
    """A believable history of the `days` before `end`, one point every `step` seconds, oldest first.

    The daily rhythm follows `end`'s time zone (default: now, in the local zone). A given day always
    looks the same for a given seed, so histories written on different days agree where they overlap.
    """
    if days < 0 or step <= 0:
        raise ValueError("days must be >= 0 and step > 0")
    if end is None or end.tzinfo is None:
        end = (end or datetime.now()).astimezone()  # a naive time is local time
    zone = end.tzinfo
    assert zone is not None
    start = end - timedelta(days=days)
    first_ms, last_ms = _to_ms(start), _to_ms(end)
    step_ms = max(1, round(step * 1000))
    day = start.date()
    while day <= end.date():
        rng = random.Random(f"{seed}:{day.isoformat()}")
        for stretch in _day(day, zone, rng):
            # Points sit on a grid of whole steps since the epoch, like a sampler's ticks.
            begin_ms = max(_to_ms(stretch.start), first_ms)
            tick = -(-begin_ms // step_ms) * step_ms
            while tick < min(_to_ms(stretch.end), last_ms):
                yield _record(tick, step_ms / 1000, host, stretch)
                tick += step_ms
        day += timedelta(days=1)


def _to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _record(time_ms: int, duration: float, host: str, stretch: _Stretch) -> Record:
    activity = stretch.activity
    return Record(
        time_ms=time_ms, duration=duration, host=host, app=activity.app, activity=activity.activity,
        category=AWAY if stretch.away else activity.category,
        score=0.0 if stretch.away else activity.score,
        state=STATE_AWAY if stretch.away else STATE_ACTIVE,
        title=stretch.page.title, url=stretch.page.url,
    )


def demo_line(record: Record) -> str:
    """A demo point as line protocol: the record's tags and the demo tag."""
    return to_line(record, DEMO_TAGS)


def drop_demo_query() -> str:
    """The InfluxQL that deletes every demo point again, and no point of a real machine called demo."""
    (tag, value), = DEMO_TAGS.items()
    return f"DROP SERIES FROM \"{MEASUREMENT}\" WHERE \"host\" = '{DEMO_HOST}' AND \"{tag}\" = '{value}'"


def drop_untagged_query() -> str:
    """The InfluxQL that deletes every point of the demo host, demo points or not: for the user to decide."""
    return f"DROP SERIES FROM \"{MEASUREMENT}\" WHERE \"host\" = '{DEMO_HOST}'"


def _series_query() -> str:
    return f"SHOW SERIES FROM \"{MEASUREMENT}\" WHERE \"host\" = '{DEMO_HOST}'"


def is_demo_series(key: str) -> bool:
    """Whether a series key (as SHOW SERIES gives it) carries the demo tag."""
    tags = set(re.split(r"(?<!\\),", key)[1:])
    return all(f"{tag}={value}" in tags for tag, value in DEMO_TAGS.items())


class DemoRefused(PlainError):
    """Writing or removing demo points would mix them with a real machine's: `str()` says why, in one sentence."""


# -- tracker demo: the week written to InfluxDB, and removed again -----------------------------------



def estimated_points(days: int, step: float) -> int:
    """About how many points `week_records(days, step=step)` yields: for a progress bar's total."""
    return max(1, int(days * 6.5 * 3600 / step))


def write_week(settings: InfluxSettings, days: int, step: float = 1.0, batch_size: int = 5000,
               progress: Progress | None = None, own_host: str | None = None) -> int:
    """Write the demo history of the last `days` days to InfluxDB; return the number of points.

    DemoRefused when this machine (`own_host`) or points on the server already use the demo host name;
    SendError (from tracker.sending.sinks) says in one sentence what went wrong."""
    if own_host == DEMO_HOST:
        raise DemoRefused(f"Refusing to write demo points: this machine's own host tag is {DEMO_HOST}, so the "
                          "dashboard would show them as its time; set `host:` in config.yaml to another name first.")
    database = _v1_database(settings)
    if database is not None and _real_series(settings, database):
        raise DemoRefused(f"Refusing to write demo points: {database} already holds points of a machine called "
                          f"{DEMO_HOST} that are not demo points, and the dashboard would show both as one; write "
                          "the demo to another database with --influx-bucket.")
    sink = open_sink(settings)
    total = estimated_points(days, step)
    written = 0
    batch: list[str] = []
    try:
        for record in week_records(days, step=step):
            batch.append(demo_line(record))
            if len(batch) >= batch_size:
                sink.write(batch)
                written += len(batch)
                batch = []
                if progress is not None:
                    progress(written, max(total, written))
        if batch:
            sink.write(batch)
            written += len(batch)
        if progress is not None:
            progress(written, written)
    finally:
        sink.close()
    return written


def remove_instructions(settings: InfluxSettings) -> str:
    """How to delete the demo points with InfluxDB's own tools, for servers tracker does not delete on."""
    bucket = settings.bucket
    (tag, value), = DEMO_TAGS.items()
    return (f"On InfluxDB 2.x: influx delete --bucket {bucket} --start 1970-01-01T00:00:00Z "
            f"--stop 2100-01-01T00:00:00Z --predicate 'host=\"{DEMO_HOST}\" AND {tag}=\"{value}\"'. "
            f"On VictoriaMetrics: curl -g '{display_url(settings.url).rstrip('/')}/api/v1/admin/tsdb/delete_series"
            f"?match[]={{host=\"{DEMO_HOST}\",{tag}=\"{value}\"}}'. "
            f"On InfluxDB 3.x the demo host cannot be deleted alone: write the demo to a database of its own "
            f"(--influx-bucket) and drop that database.")


def remove_week(settings: InfluxSettings) -> int | None:
    """Delete every demo point (those with the demo tag): None when the server is not InfluxDB 1.x, else how
    many series of the demo host it kept because they lack the tag (a real machine called demo, or demo points
    written before the tag existed)."""
    database = _v1_database(settings)
    if database is None:
        return None
    # Here, not at the top: the demo source of `tracker run` shares this module, and must not load urllib3.
    from tracker.sending.sinks.influx_v1 import execute

    execute(settings, database, drop_demo_query())
    return len(_real_series(settings, database))


def _v1_database(settings: InfluxSettings) -> str | None:
    """The database demo points go to, when the server is InfluxDB 1.x (None otherwise)."""
    from tracker.sending.sinks.influx_v1 import speaks_v1

    require_configured(settings)
    if settings.api == "v2" or (settings.api == "auto" and not speaks_v1(settings)):
        return None
    database = settings.bucket.partition("/")[0]
    if not database:
        raise InfluxSettingsError("influx.bucket is empty: name the database the demo was written to.")
    return database


def _real_series(settings: InfluxSettings, database: str) -> list[str]:
    """The series of the demo host without the demo tag: not tracker's demo points."""
    from tracker.sending.sinks.influx_v1 import execute

    results = execute(settings, database, _series_query())
    keys = [str(row[0]) for result in results for series in result.get("series") or ()
            for row in series.get("values") or ()]
    return [key for key in keys if not is_demo_series(key)]
