"""tracker.sending.deliver against fake servers: whatever a server refuses, or however it fails, every line ends
exactly once as confirmed, quarantined or waiting; a line is quarantined only once the server accepted another;
each request keeps the batch's order."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.sending.deliver import (
    Accepted,
    DeliveryStep,
    Quarantined,
    RefusedEverything,
    SmallerBatches,
    deliver,
    refusal_budget,
)
from tracker.sending.sinks import Rejected, RetryLater, SendError, TooLarge


@dataclass
class FakeServer:
    """Refuses any request holding a bad line (400), or more than `most_lines` (413), or everything; fails
    for a while (a 503) from its `fails_at`-th request on."""

    lines: list[str]
    bad: frozenset[int]
    most_lines: int | None = None
    refuses_everything: bool = False
    fails_at: int | None = None
    requests: list[list[int]] = field(default_factory=list)  # the positions each request held

    def write(self, lines: list[str]) -> None:
        positions = [self.lines.index(line) for line in lines]
        self.requests.append(positions)
        if self.fails_at is not None and len(self.requests) > self.fails_at:
            raise RetryLater("InfluxDB is not ready (503)")
        if self.most_lines is not None and len(lines) > self.most_lines:
            raise TooLarge("the batch is too large (413)")
        if self.refuses_everything:
            raise Rejected("a proxy refuses every request (400)", "forbidden by proxy")
        refused = sorted(self.bad.intersection(positions))
        if refused:
            raise Rejected("the server refused the batch (400)", f"bad line {refused[0]}")


@st.composite
def servers(draw: st.DrawFn) -> FakeServer:
    count = draw(st.integers(1, 80))
    return FakeServer(
        lines=[f"activity,host=test seconds=1i {number}" for number in range(count)],
        bad=frozenset(draw(st.sets(st.integers(0, count - 1), max_size=count))),
        most_lines=draw(st.none() | st.integers(1, count)),
        refuses_everything=draw(st.integers(0, 3)) == 0,  # now and then: a proxy that refuses every request
        fails_at=draw(st.none() | st.integers(0, 30)))


def delivered(server: FakeServer) -> tuple[list[DeliveryStep], SendError | None]:
    """What deliver() said, and how it ended (None when it finished)."""
    outcomes: list[DeliveryStep] = []
    try:
        for outcome in deliver(server.lines, server.write, "http://influx.test"):
            outcomes.append(outcome)
    except SendError as failure:
        return outcomes, failure
    return outcomes, None


@given(servers())
def test_every_line_ends_once_and_only_an_answering_server_has_lines_quarantined(server: FakeServer) -> None:
    outcomes, failure = delivered(server)
    confirmed = [position for outcome in outcomes if isinstance(outcome, Accepted) for position in outcome.positions]
    quarantined = [outcome.position for outcome in outcomes if isinstance(outcome, Quarantined)]
    waiting = [position for position in range(len(server.lines)) if position not in {*confirmed, *quarantined}]

    # Exactly once each: confirmed, quarantined or waiting.
    assert sorted(confirmed + quarantined + waiting) == list(range(len(server.lines)))
    # Only a finished delivery leaves nothing waiting; a failure is the server's (or a proxy's), never a line's.
    assert (failure is None) == (not waiting)
    assert failure is None or isinstance(failure, (RefusedEverything, RetryLater))

    # A line is quarantined only after the server accepted another, and only for what it holds.
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, Quarantined):
            accepted_before = [earlier for earlier in outcomes[:index] if isinstance(earlier, Accepted)]
            assert accepted_before and all(outcome.position not in earlier.positions for earlier in accepted_before)
            assert outcome.position in server.bad and [outcome.position] in server.requests
    assert not (server.refuses_everything and quarantined)

    # Every request keeps the batch's order, and so does every confirmation.
    for request in server.requests:
        assert request == sorted(request)
    for outcome in outcomes:
        if isinstance(outcome, Accepted):
            assert list(outcome.positions) == sorted(outcome.positions)

    # A server that accepts nothing costs at most refusal_budget() requests, and every line waits.
    if isinstance(failure, RefusedEverything):
        assert not confirmed and not quarantined
        assert len(server.requests) <= refusal_budget(len(server.lines))


@given(servers())
def test_a_refused_batch_shrinks_later_batches_only_when_too_large(server: FakeServer) -> None:
    outcomes, _failure = delivered(server)
    sizes = [outcome.size for outcome in outcomes if isinstance(outcome, SmallerBatches)]
    if server.most_lines is None:
        assert not sizes
    assert all(1 <= size < len(server.lines) for size in sizes)


@pytest.mark.parametrize("most_lines", [None, 3])
def test_a_server_that_takes_every_line_confirms_the_batch_in_order(most_lines: int | None) -> None:
    server = FakeServer([f"activity seconds=1i {number}" for number in range(10)], frozenset(), most_lines)
    outcomes, failure = delivered(server)
    confirmed = [position for outcome in outcomes if isinstance(outcome, Accepted) for position in outcome.positions]
    assert failure is None and confirmed == list(range(10))
