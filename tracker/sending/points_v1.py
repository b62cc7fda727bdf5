"""A host's points in InfluxDB 1.x, read and deleted with InfluxQL (for tracker.tasks.recategorize)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from tracker.config import InfluxSettings
from tracker.lineprotocol import MEASUREMENT
from tracker.model import Record
from tracker.sending.sinks import (
    InfluxSettingsError,
    influx_v1,  # execute() looked up on each call: tests put a spy there
)

# The tags (with the host) that name a point's series, in this order: activity, app, category, state.
Series = tuple[str, ...]
# Columns of the points tracker writes; any other with a value marks a point tracker did not write.
KNOWN_COLUMNS = frozenset({"time", "activity", "app", "category", "host", "state", "duration", "score",
                           "title", "url"})
# The tags every point tracker writes carries, never empty.
TRACKER_TAGS = ("activity", "app", "category", "host", "state")
DELETES_PER_REQUEST = 200


class V1Points:
    """The points of the database (and retention policy) that influx.bucket names."""

    def __init__(self, settings: InfluxSettings, answer_cap: int) -> None:
        self.settings = settings
        self.answer_cap = answer_cap
        self.database, _, retention_policy = settings.bucket.partition("/")
        if not self.database:
            raise InfluxSettingsError("influx.bucket is empty: name the database tracker writes to.")
        # Points are written to the bucket's retention policy, when it names one: read them there.
        self._source = f'"{retention_policy}"."{MEASUREMENT}"' if retention_policy else f'"{MEASUREMENT}"'

    def read(self, host: str, start_ms: int, stop_ms: int, limit: int) -> list[tuple[Record, bool]]:
        statement = (f'SELECT * FROM {self._source} WHERE "host" = {quote(host)} AND time >= {start_ms}ms'
                     f' AND time < {stop_ms}ms ORDER BY time LIMIT {limit}')
        return list(_points(influx_v1.execute(self.settings, self.database, statement, epoch="ms",
                                              body_cap=self.answer_cap)))

    def delete(self, host: str, runs: Sequence[tuple[Series, int, int]]) -> None:
        deletes = [_delete(host, series, first, last) for series, first, last in runs]
        for index in range(0, len(deletes), DELETES_PER_REQUEST):
            influx_v1.execute(self.settings, self.database, ";".join(deletes[index:index + DELETES_PER_REQUEST]))


def _points(results: list[dict[str, Any]]) -> Iterator[tuple[Record, bool]]:
    """Each point as a record, and whether tracker did not write it (`not_trackers`: left alone)."""
    for result in results:
        for series in result.get("series") or ():
            columns = series["columns"]
            for values in series["values"]:
                row = dict(zip(columns, values, strict=True))
                yield record_of(row, int(row["time"])), not_trackers(row)


def not_trackers(columns: dict[str, Any]) -> bool:
    """Whether a point was written by something other than tracker, and so is left alone: it carries a tag or
    field tracker does not write (a DELETE by tracker's tags would take it too), or lacks a tag tracker always
    writes (2.x's delete predicate cannot name a missing tag: `"app"=""` matches no series without one)."""
    return (any(value is not None for key, value in columns.items() if key not in KNOWN_COLUMNS)
            or not all(columns.get(tag) for tag in TRACKER_TAGS))


def record_of(row: dict[str, Any], time_ms: int) -> Record:
    """A point's columns as a record (absent columns: empty, or None for title and URL)."""
    return Record(time_ms=time_ms, duration=float(row.get("duration") or 0.0), host=row.get("host") or "",
                  app=row.get("app") or "", activity=row.get("activity") or "", category=row.get("category") or "",
                  score=float(row.get("score") or 0.0), state=row.get("state") or "", title=row.get("title"),
                  url=row.get("url"))


def _delete(host: str, series: Series, first_ms: int, last_ms: int) -> str:
    where = " AND ".join(f'"{key}" = {quote(value)}' for key, value in series_tags(host, series).items())
    return f'DELETE FROM "{MEASUREMENT}" WHERE {where} AND time >= {first_ms}ms AND time <= {last_ms}ms'


def series_tags(host: str, series: Series) -> dict[str, str]:
    activity, app, category, state = series
    return {"activity": activity, "app": app, "category": category, "host": host, "state": state}


def quote(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
