"""A host's points in InfluxDB 2.x (OSS and Cloud), read with Flux and deleted with /api/v2/delete (for
tracker.tasks.recategorize).

Reading: POST /api/v2/query with Flux queries (where the host's next point is; then the host's points of an
hour from there, pivoted to one row a point, in time order), answered in annotated CSV, read with tracker's
bounds like every answer. Deleting: POST /api/v2/delete with a predicate in 2.x's own grammar (`key="value"`
joined by AND, values double-quoted with InfluxQL's escapes), over a time range inclusive at both ends, as
InfluxQL's DELETE is.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from urllib.parse import urlencode

from tracker.config import InfluxSettings
from tracker.lineprotocol import MEASUREMENT
from tracker.model import Record
from tracker.redact import display_url, outward
from tracker.sending.points_v1 import Series, not_trackers, record_of, series_tags
from tracker.sending.sinks import RetryLater, error_for_status, server_reason
from tracker.sending.sinks.answers import Answer
from tracker.sending.sinks.influx_v1 import check_whole, one_request

# Columns Flux adds to every row: not tags.
_FLUX_COLUMNS = frozenset({"", "result", "table", "_start", "_stop", "_time", "_measurement"})
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z")
# Time a query covers at most: an hour holds 3,600 points of a series recorded every second.
WINDOW_MS = 3_600_000
_DIALECT = {"header": True, "delimiter": ",", "annotations": ["datatype", "group", "default"],
            "dateTimeFormat": "RFC3339Nano"}


class V2Points:
    """The points of the bucket influx.bucket names, in the organization influx.org names."""

    def __init__(self, settings: InfluxSettings, answer_cap: int) -> None:
        self.settings = settings
        self.answer_cap = answer_cap
        self._org = urlencode({"org": settings.org or ""})
        self._org_and_bucket = urlencode({"org": settings.org or "", "bucket": settings.bucket})

    def read(self, host: str, start_ms: int, stop_ms: int, limit: int) -> list[tuple[Record, bool]]:
        """An hour at a time from the next point on (Flux sorts all that a query covers: a query over the whole
        history would sort all of it, for every batch), until `limit` points are found or `stop_ms` is reached;
        the gaps between are skipped by asking where the next point is."""
        found: list[tuple[Record, bool]] = []
        cursor = start_ms
        while len(found) < limit and cursor < stop_ms:
            first_ms = self._first_ms(host, cursor, stop_ms)
            if first_ms is None:
                break
            cursor = min(stop_ms, first_ms + WINDOW_MS)
            found.extend(self._points(self._query(
                f"{self._host_points(host, first_ms, cursor)}"
                '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
                "  |> group()\n"
                '  |> sort(columns: ["_time"])\n'
                f"  |> limit(n: {limit - len(found)})\n")))
        return found

    def _first_ms(self, host: str, start_ms: int, stop_ms: int) -> int | None:
        """The time of the host's first point in [start_ms, stop_ms), None when there is none: first() of each
        series and field is read from the storage's index, not by reading the points."""
        for row in self._rows(self._query(f"{self._host_points(host, start_ms, stop_ms)}"
                                          "  |> first()\n"
                                          '  |> keep(columns: ["_time"])\n'
                                          "  |> group()\n"
                                          '  |> min(column: "_time")\n')):
            return time_ms(row.get("_time", ""))
        return None

    def _host_points(self, host: str, start_ms: int, stop_ms: int) -> str:
        return (f"from(bucket: {flux_string(self.settings.bucket)})\n"
                f"  |> range(start: {rfc3339(start_ms)}, stop: {rfc3339(stop_ms)})\n"
                f"  |> filter(fn: (r) => r._measurement == {flux_string(MEASUREMENT)}"
                f" and r.host == {flux_string(host)})\n")

    def _query(self, flux: str) -> str:
        """The annotated CSV that a Flux query is answered with."""
        body = json.dumps({"query": flux, "type": "flux", "dialect": _DIALECT}).encode()
        answer = one_request(self.settings, "POST", f"/api/v2/query?{self._org}", body,
                             {"Content-Type": "application/json", "Accept": "application/csv"}, self.answer_cap)
        check_whole(self.settings, answer, self.answer_cap)
        self._check(answer, 200)
        return answer.text(self.settings)

    def delete(self, host: str, runs: Sequence[tuple[Series, int, int]]) -> None:
        for series, first_ms, last_ms in runs:  # one predicate a request: 2.x's grammar has no OR
            predicate = " AND ".join(f'"{key}"={predicate_value(value)}' for key, value in
                                     {"_measurement": MEASUREMENT, **series_tags(host, series)}.items())
            body = json.dumps({"start": rfc3339(first_ms), "stop": rfc3339(last_ms), "predicate": predicate})
            self._check(one_request(self.settings, "POST", f"/api/v2/delete?{self._org_and_bucket}", body.encode(),
                                    {"Content-Type": "application/json"}), 204)

    def delete_refused(self) -> str | None:
        """None when the server deletes through /api/v2/delete (asked with a delete that takes nothing: a tag no
        point has, at one instant in 1970); else its answer, in a few words. SendError when it fails otherwise."""
        body = json.dumps({"start": rfc3339(0), "stop": rfc3339(0),
                           "predicate": f'"_measurement"={predicate_value(MEASUREMENT)} AND "tracker_probe"="none"'})
        answer = one_request(self.settings, "POST", f"/api/v2/delete?{self._org_and_bucket}", body.encode(),
                             {"Content-Type": "application/json"})
        if answer.status in (404, 405, 501):
            return f"{answer.status} {outward(answer.reason, self.settings, 40)}".strip()
        self._check(answer, 204)
        return None

    def _check(self, answer: Answer, expected: int) -> None:
        if answer.status != expected:
            reason = server_reason(answer.text(self.settings), answer.reason or str(answer.status), self.settings)
            if answer.status == 404 and "not found" not in reason.lower():  # Flux: 'could not find bucket "x"'
                reason = f"{reason} (not found)"
            raise error_for_status(self.settings, answer.status, reason, answer.headers.get("Retry-After"))

    def _rows(self, text: str) -> Iterator[dict[str, str]]:
        """Each row of annotated CSV by its columns' names. Tables follow one another, each with its annotations
        and header; a query that failed part-way ends in an error table (2.x answers 200 all the same)."""
        header: list[str] | None = None
        for row in csv.reader(io.StringIO(text, newline="")):
            if not any(row):  # a blank line ends a table
                header = None
            elif row[0].startswith("#"):
                header = None  # annotations come before each table's header
            elif header is None:
                header = row
            else:
                values = dict(zip(header, row, strict=False))
                if "error" in header and "_time" not in header:
                    raise RetryLater(f"InfluxDB at {display_url(self.settings.url)} failed the query part-way"
                                     f" ({server_reason(values.get('error'), 'no reason given', self.settings)})")
                yield values

    def _points(self, text: str) -> Iterator[tuple[Record, bool]]:
        """Each point as a record, and whether tracker did not write it (`not_trackers`: left alone)."""
        for values in self._rows(text):
            columns = {key: value or None for key, value in values.items() if key not in _FLUX_COLUMNS}
            yield record_of(columns, time_ms(values.get("_time", ""))), not_trackers(columns)


def time_ms(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 UTC time as Flux writes it (up to nanoseconds)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise RetryLater(f"InfluxDB answered a query with a time tracker cannot read ({text[:40]!r})")
    seconds = calendar.timegm(datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S").timetuple())
    return seconds * 1000 + int((match[2] or "0").ljust(9, "0")) // 1_000_000


def rfc3339(ms: int) -> str:
    """An RFC3339Nano time, as 2.x's /api/v2/delete and Flux read it: to the millisecond, in UTC."""
    moment = datetime.fromtimestamp(ms // 1000, timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def flux_string(value: str) -> str:
    """A Flux string literal: backslash, quote and the `${` of interpolation escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def predicate_value(value: str) -> str:
    """A tag value in a delete predicate: double-quoted, InfluxQL's scanner escapes (`\\\\`, `\\"`, `\\n`)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
