"""Whatever a window title, app name or URL holds, InfluxDB returns exactly what was recorded.

Records are built the way the runner builds them (clean_tag for tags, clean_text for title and url),
written through the v1 sink to a real InfluxDB 1.x and read back through InfluxQL.
"""

from __future__ import annotations

import itertools

from helpers.fault_server import stored_records
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tracker.config import InfluxSettings
from tracker.lineprotocol import clean_tag, clean_text, to_line
from tracker.model import Record
from tracker.sending.sinks.connect import open_sink

# The characters line protocol, JSON, terminals and text layout treat specially.
AWKWARD = ['"', "'", ",", " ", "=", "\\", "\\\\", "\\ ", "\\,", "\\=", "\\\"", "\n", "\r", "\t", "\x00",
           "\x7f", "\x85", "\u200f", "\u202e", "\u2028", "\ufeff", "😀", "👩‍💻", "é", "ß", "#", "{}", "\u00a0"]
pieces = st.sampled_from(AWKWARD) | st.text(max_size=6)
hostile = st.lists(pieces, max_size=12).map("".join)
HUGE = ("a \\\"😀, =\\\t" * 12_000)[:100_000]  # a 100 KB title of nothing but trouble

raw_record = st.fixed_dictionaries({
    "app": hostile, "activity": hostile, "category": hostile, "host": hostile,
    "title": st.none() | hostile | st.just(HUGE), "url": st.none() | hostile,
    "score": st.sampled_from([-1.0, 0.0, 0.5, 1.0]),
})

_batches = itertools.count()
BATCH_MS = 1_000_000  # each example writes into a time range of its own


def as_recorded(raw: dict, time_ms: int) -> Record:
    """A record as the runner builds it from what a source read."""
    return Record(time_ms=time_ms, duration=1.0, host=clean_tag(raw["host"]), app=clean_tag(raw["app"]),
                  activity=clean_tag(raw["activity"]), category=clean_tag(raw["category"]), score=raw["score"],
                  title=clean_text(raw["title"]), url=clean_text(raw["url"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raws=st.lists(raw_record, min_size=1, max_size=8))
@example(raws=[{"app": "a\\", "activity": "b\\ c", "category": "=,\\=", "host": "\\\\", "title": "end\\",
                "url": 'say "hi"\\', "score": 1.0}])
def test_influxdb_returns_exactly_what_was_recorded(influxdb1, raws):
    database = "hostile"
    if next(_batches) == 0:
        influxdb1.create_database(database)
    start = 1_600_000_000_000 + next(_batches) * BATCH_MS
    records = [as_recorded(raw, start + number) for number, raw in enumerate(raws)]
    open_sink(InfluxSettings(url=influxdb1.url, bucket=database, api="v1")).write(
        [to_line(record) for record in records])
    stored = stored_records(influxdb1, database, f"time >= {start}ms AND time < {start + BATCH_MS}ms")
    assert stored == records
