"""What `tracker run` shows: a live view on a terminal, or one log line per change of activity.

Both are a `View` (the port of tracker.recording.runner): the runner calls `show(RunView)` once per sample
and `notice(text)` for what the user should know, and does not care which one it has.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TextIO

from tracker.events import score_of_pulse
from tracker.model import STATE_AWAY, Record
from tracker.timespec import human_ago, human_duration
from tracker.ui import colours
from tracker.ui.output import reader_gone, replace_unencodable

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from tracker.recording.runner import Details, RunView
    from tracker.sending.sender import SenderState


# The 1 Hz runner's ticks jitter by a few ms: a limit of exactly 1 s would skip every other one.
MIN_REDRAW_INTERVAL = 0.9
LOG_FORMATS = ("text", "json")  # of ActivityLog's lines: `tracker run --log-format`
TODAY_ROWS = 6  # categories shown in the live view; the rest are summed as "other"
NOTICE_ROWS = 3
BAR_WIDTH = 24
_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar `fraction` (0..1) of `width` cells, in eighths of a cell."""
    eighths = round(max(0.0, min(fraction, 1.0)) * width * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[rest] if rest else "")).ljust(width)


def lasted(seconds: float) -> str:
    """`42s`, `12m 03s`, `1h 02m`: seconds matter in the first hour of an activity."""
    whole = max(0, int(seconds))
    if 60 <= whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return human_duration(whole)


def influx_line(state: SenderState | None, now: datetime | None = None) -> str:
    """The live view's one line about InfluxDB."""
    if state is None:
        return "not configured: recording locally only"
    if state.status == "failing":
        return f"failing: {state.last_error}"
    if state.last_send is not None:
        ago = human_ago(((now or datetime.now(timezone.utc)) - state.last_send).total_seconds())
        return f"connected · last send {ago}"
    return "connecting…"


class LiveView:
    """A view of the current activity and today, redrawn in place at most about once a second."""

    def __init__(self, console: Console, min_interval: float = MIN_REDRAW_INTERVAL) -> None:
        self.console = console
        self.min_interval = min_interval
        self._live: Live | None = None
        self._view: RunView | None = None
        self._details: Details | None = None
        self._notices: list[str] = []
        self._last_draw = float("-inf")
        self._lock = threading.Lock()  # notices may come from the sender's thread

    def start(self) -> None:
        from rich.live import Live

        replace_unencodable(self.console.file)
        # No auto refresh: the screen changes only when there is something new, so it never flickers.
        self._live = Live(self._render(), console=self.console, auto_refresh=False, transient=False,
                          screen=False)
        with self._unless_gone():
            self._live.start(refresh=True)

    def stop(self) -> None:
        with self._lock:
            if self._live is None:
                return
            with self._unless_gone():
                self._live.update(self._render())  # drawn by stop(): the last state stays on screen
                self._live.stop()
            self._live = None

    def __enter__(self) -> LiveView:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def show(self, view: RunView) -> None:
        # Asked for on the runner's thread, at every sample: the frame left at stop() must be up to date.
        details = view.details()
        with self._lock:
            self._view, self._details = view, details
            now = time.monotonic()
            # Only samples count towards the limit: a notice drawn just before must not hide a new sample.
            if now - self._last_draw >= self.min_interval:
                self._last_draw = now
                self._draw()

    def notice(self, text: str) -> None:
        with self._lock:
            self._notices = [*self._notices[-(NOTICE_ROWS - 1):], text]
            self._draw()

    def _draw(self) -> None:
        if self._live is None:
            return
        with self._unless_gone():
            self._live.update(self._render(), refresh=True)

    @contextmanager
    def _unless_gone(self) -> Iterator[None]:
        """A terminal that went away (closed, its ssh session dropped) ends the view, never the recording."""
        try:
            yield
        except OSError as error:
            if not reader_gone(error, self.console.file):
                raise
            self._live = None

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True, min_width=len("InfluxDB"))  # a long title must not squash it
        grid.add_column()  # wrappable, so the table can narrow it; each line cuts itself with an ellipsis
        view, details = self._view, self._details
        if view is None:
            grid.add_row("Now", Text("waiting for the first sample…", style="dim"))
        else:
            grid.add_row("Now", _now_line(view.record))
            grid.add_row("", _category_line(view))
        if details is not None:
            grid.add_row("Today", _today_table(details.today))
            grid.add_row("Pulse", _pulse_text(details.pulse))
            grid.add_row("InfluxDB", Text(f"{influx_line(details.sender)} · {details.waiting:,} waiting"))
        notices = list(dict.fromkeys(self._notices))[-NOTICE_ROWS:]
        # Full width and wrapped: a notice often says what to do, and must be read whole.
        lines = [Text(f"! {notice}", style="yellow") for notice in notices]
        return Panel(Group(grid, *lines), title="tracker", title_align="left", border_style="dim", expand=True)


def _now_line(record: Record) -> RenderableType:
    from rich.text import Text

    line = Text(record.activity, style="bold", no_wrap=True, overflow="ellipsis")  # a long title is cut
    if record.app != record.activity:
        line.append(f"  {record.app}", style="cyan")
    if record.title:
        line.append(f"  {record.title}", style="dim")
    return line


def _category_line(view: RunView) -> RenderableType:
    from rich.text import Text

    record = view.record
    style = "dim" if record.state == STATE_AWAY else colours.score_style(record.score)
    line = Text(record.category, style=f"bold {style}", no_wrap=True, overflow="ellipsis")
    line.append(f"  {record.score:+g}", style=style)
    line.append(f"  for {lasted((record.time - view.since).total_seconds() + record.duration)}")
    line.append(f"  rule: {view.rule}" if view.rule else "  no rule matched", style="dim")
    return line


def _today_table(today: dict[str, float]) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(no_wrap=True)
    ranked = sorted(today.items(), key=lambda item: (-item[1], item[0]))
    if not ranked:
        table.add_row(Text("nothing yet", style="dim"), "", "")
        return table
    shown = ranked[:TODAY_ROWS]
    hidden = sum(seconds for _, seconds in ranked[TODAY_ROWS:])
    if hidden:
        shown = [*ranked[: TODAY_ROWS - 1], ("other", hidden + ranked[TODAY_ROWS - 1][1])]
    longest = max(seconds for _, seconds in shown)
    for category, seconds in shown:
        # Text, not markup: a category may be named '[bold]' or '[/]'.
        table.add_row(Text(category), human_duration(seconds), Text(bar(seconds / longest), style="blue"))
    return table


def _pulse_text(pulse: float | None) -> RenderableType:
    from rich.text import Text

    if pulse is None:
        return Text("no active time yet", style="dim")
    text = Text(f"{pulse:.0f}", style=f"bold {colours.score_style(score_of_pulse(pulse))}")
    text.append(" / 100", style="dim")
    return text


class ActivityLog:
    """Plain lines for a log or a pipe: one per change of activity (never per sample), and notices."""

    def __init__(self, stream: TextIO, fmt: str = "text") -> None:
        if fmt not in LOG_FORMATS:
            raise ValueError(f"log format must be text or json, not {fmt!r}")
        self.stream = stream
        self.fmt = fmt
        self._reader_gone = False
        replace_unencodable(stream)

    def __enter__(self) -> ActivityLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._write("")

    def show(self, view: RunView) -> None:
        """A line when this sample starts a new activity; today's totals and the sender are not shown."""
        if not view.changed:
            return
        record, rule = view.record, view.rule
        if self.fmt == "json":
            self._write_json({"time": record.time.isoformat(), "event": "activity", "activity": record.activity,
                              "app": record.app, "category": record.category, "score": record.score,
                              "state": record.state, "rule": rule, "title": record.title, "url": record.url})
        else:
            app = f" ({record.app})" if record.app != record.activity else ""
            matched = f"  rule: {rule}" if rule else ""
            self._write_text(record.time, f"{record.activity}{app}  {record.category} {record.score:+g}{matched}")

    def notice(self, text: str) -> None:
        now = datetime.now().astimezone()
        if self.fmt == "json":
            self._write_json({"time": now.isoformat(), "event": "notice", "message": text})
        else:
            self._write_text(now, f"! {text}")

    def _write_text(self, moment: datetime, text: str) -> None:
        self._write(f"{moment.astimezone():%Y-%m-%d %H:%M:%S}  {text}\n")

    def _write_json(self, fields: dict[str, object]) -> None:
        self._write(json.dumps(fields, ensure_ascii=False) + "\n")

    def _write(self, line: str) -> None:
        """Write and flush (lines must reach a pipe or a log file as they happen); a line that cannot be
        written is dropped and recording goes on, and once the reader is gone nothing more is tried."""
        if self._reader_gone:
            return
        try:
            self.stream.write(line)
            self.stream.flush()
        except OSError as error:
            self._reader_gone = reader_gone(error, self.stream)
