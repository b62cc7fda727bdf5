"""Delivery of one batch: which of its lines the server confirmed, which it refuses for good (quarantined), and
which wait for another try. Pure: no outbox, no threads, no clock; the sender applies what comes out.

A batch the server refuses is sent again in halves, one request at a time, until the lines it refuses are alone.
A line refused alone is quarantined only once the server accepted another line of the batch: a server or proxy
that refuses everything is a failure like any other (the lines wait), not a reason to set every line aside.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from tracker.sending.sinks import Rejected, SendError, TooLarge

# While the server has accepted no line of a refused batch, the bisection may spend this many refused requests
# beyond those it takes to reach a single line (enough to step past a short run of bad lines at the start), then
# tries this many single lines from elsewhere in the batch before deciding that the server refuses everything.
EXTRA_REFUSALS = 4
PROBES = 2

# One request: returns only once the server confirmed the lines; raises SendError (TooLarge, Rejected, ...) if not.
Write = Callable[[list[str]], None]


@dataclass(frozen=True)
class Accepted:
    """The server confirmed these lines (positions in the batch, in order): forget them."""

    positions: tuple[int, ...]


@dataclass(frozen=True)
class Quarantined:
    """The server refuses this line on its own, and accepted another: set it aside with the server's reason."""

    position: int
    reason: str


@dataclass(frozen=True)
class SmallerBatches:
    """The server refused a request as too large: later batches start at `size` lines."""

    size: int


DeliveryStep = Accepted | Quarantined | SmallerBatches


class RefusedEverything(SendError):
    """The server refused every line of a batch it was sent, down to single lines, or a single line as too large:
    the fault lies with the server, a proxy or the settings, not with the lines, so they keep waiting."""


def refusal_budget(batch_lines: int) -> int:
    """The most requests a batch of `batch_lines` costs before the server is found to refuse everything: the
    batch, the halves down to one line, EXTRA_REFUSALS more and PROBES single lines."""
    return 1 + math.ceil(math.log2(max(batch_lines, 1))) + EXTRA_REFUSALS + PROBES


def deliver(lines: Sequence[str], write: Write, url: str, refusal: SendError | None = None) -> Iterator[DeliveryStep]:
    """Send the batch `lines` through `write`, and yield what became of them as it happens (so the caller forgets
    confirmed lines at once, not after the last request). `refusal`: the batch was already sent whole and
    refused so; without it the first request is the whole batch.

    Lines never yielded wait: those left when `write` fails otherwise (its error propagates), and every line not
    accepted when nothing is accepted within refusal_budget() requests, or a single line is too large
    (RefusedEverything; `url` names the server in its message).
    """
    if refusal is None:
        try:
            write(list(lines))
        except (TooLarge, Rejected) as error:
            refusal = error
        else:
            yield Accepted(tuple(range(len(lines))))
            return
    parts: list[Sequence[int]] = []  # positions still to send; the last part goes next
    suspects: list[Quarantined] = []  # lines refused alone before anything was accepted
    accepted = probed = False
    refusals, allowed = 0, refusal_budget(len(lines)) - PROBES

    def refused(part: Sequence[int], error: SendError) -> Iterator[DeliveryStep]:
        nonlocal refusals
        refusals += 1
        if len(part) > 1:
            if isinstance(error, TooLarge):
                yield SmallerBatches(max(1, len(part) // 2))
            middle = len(part) // 2
            parts.extend((part[middle:], part[:middle]))
            return
        if isinstance(error, TooLarge):  # one line is far below any real server's limit
            raise RefusedEverything(f"InfluxDB at {url} refused even a single sample as too large (413):"
                                    " raise the request size limit of the server, or of a proxy in front of it")
        verdict = Quarantined(part[0], _reason(error))
        if accepted:
            yield verdict
        else:
            suspects.append(verdict)

    yield from refused(range(len(lines)), refusal)
    while parts:
        if not accepted and refusals >= allowed:
            if probed:
                break
            # Before blaming the server, try single lines from elsewhere in the batch: a run of bad lines at its
            # start must not hold back the good ones behind it for ever.
            probed = True
            remaining = [position for part in reversed(parts) for position in part]
            probes = _spread(remaining, PROBES)
            rest = [position for position in remaining if position not in probes]
            parts[:] = ([rest] if rest else []) + [[position] for position in probes]
            allowed = refusals + len(probes)
        part = parts.pop()
        try:
            write([lines[position] for position in part])
        except (TooLarge, Rejected) as error:
            refusal = error
            yield from refused(part, error)
            continue
        yield Accepted(tuple(part))
        if not accepted:
            accepted = True  # the server takes lines: those it refused alone were refused for what they hold
            yield from suspects
    if not accepted:
        raise RefusedEverything(f"InfluxDB at {url} refused every sample it was sent, even one at a time"
                                f" ({_reason(refusal)}): check the server and any proxy in front of it")


def _reason(refusal: SendError) -> str:
    """What the server said when it refused lines."""
    return refusal.reason if isinstance(refusal, Rejected) else str(refusal)


def _spread(positions: Sequence[int], count: int) -> list[int]:
    """Up to `count` of `positions`, in order, as far apart as they go, the last among them."""
    last = len(positions) - 1
    return [positions[index] for index in sorted({last - len(positions) * step // count for step in range(count)})]
