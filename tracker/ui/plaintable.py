"""A rich Table as rich draws it without colour, drawn without importing rich's console (a third of the time
`tracker categories list` takes): for output to a pipe or a file.

It mirrors rich's layout (column widths, word wrapping, ellipsis) for the tables tracker draws this way: the
default heavy-head box, padding (0, 1), no title. Where it cannot be sure to match (colour forced on, Windows,
Jupyter, a narrow width, control characters in a cell), plain_width() or draw() says so and the caller uses
rich. tests/test_plaintable.py compares the two, character for character.
"""

from __future__ import annotations

import builtins
import itertools
import os
import re
import sys
from collections.abc import Sequence
from typing import Literal, NamedTuple, TextIO

from rich.cells import cell_len, set_cell_size  # cheap: rich's measure of a character's width, to agree with it

_MIN_WIDTH = 20  # narrower, rich's corner cases (empty cells, zero widths) are not worth mirroring
_PADDING = 2  # a space either side of every cell
_TRAILING_SPACE = re.compile(r"\s+$")
_WORD = re.compile(r"\s*\S+\s*")  # rich's word: the word and the spaces after it


class Column(NamedTuple):
    header: str
    justify: Literal["left", "right"] = "left"
    no_wrap: bool = False


def plain_width(stream: TextIO) -> int | None:
    """The width rich's Console() would draw at on `stream`, if it would draw without colour or style and with
    the heavy box; None otherwise. Follows rich's Console: is_terminal, encoding and size."""
    if sys.platform == "win32" or hasattr(builtins, "get_ipython") or hasattr(stream, "rich_proxied_file"):
        return None
    if getattr(sys.stdin, "__module__", "").startswith("idlelib"):
        return None
    if _is_terminal(stream):
        return None
    if not (getattr(stream, "encoding", "utf-8") or "utf-8").lower().startswith("utf"):
        return None  # rich would draw the box in ASCII
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns)
    width = None
    for stream_number, standard in enumerate((sys.__stdin__, sys.__stdout__, sys.__stderr__)):
        try:
            width = os.get_terminal_size(_file_number(standard, stream_number)).columns
        except (AttributeError, ValueError, OSError):  # not a terminal
            continue
        break
    return width or 80


def _is_terminal(stream: TextIO) -> bool:
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "1"
    force_color = os.environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color != ""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _file_number(stream: TextIO | None, default: int) -> int:
    try:
        return stream.fileno() if stream is not None else default
    except (AttributeError, ValueError, OSError):  # as rich: no usable descriptor means the standard one
        return default


def draw(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> str | None:
    """The table as rich's Table(box=HEAVY_HEAD) prints it at `width` without colour (lines ending in "\\n"); None
    when it might not match."""
    cells: list[Sequence[str]] = [[column.header for column in columns], *rows]
    if width < _MIN_WIDTH or not all(_plain(text) for row in cells for text in row):
        return None
    widths = _column_widths(columns, cells, width - (len(columns) + 1))  # the box's edges and dividers
    if min(widths) <= _PADDING:
        return None
    heavy = ("┏", "━", "┳", "┓")
    lines = [_rule(heavy, widths)]
    for number, row in enumerate(cells):
        drawn = [_cell_lines(text, column, cell_width - _PADDING)
                 for text, column, cell_width in zip(row, columns, widths, strict=True)]
        height = max(len(lines_of_cell) for lines_of_cell in drawn)
        edge = "┃" if number == 0 else "│"
        for line in range(height):
            parts = [f" {cell[line]} " if line < len(cell) else " " * cell_width
                     for cell, cell_width in zip(drawn, widths, strict=True)]
            lines.append(edge + edge.join(parts) + edge)
        if number == 0:
            lines.append(_rule(("┡", "━", "╇", "┩"), widths))
    lines.append(_rule(("└", "─", "┴", "┘"), widths))
    return "".join(line + "\n" for line in lines)


def _plain(text: str) -> bool:
    """Only printable characters and line breaks: no tab, control or odd space, which rich treats its own way."""
    return all(line.isprintable() for line in text.split("\n"))


def _rule(parts: tuple[str, str, str, str], widths: list[int]) -> str:
    left, horizontal, divider, right = parts
    return left + divider.join(horizontal * width for width in widths) + right


# -- rich's Table._calculate_column_widths, for columns without fixed, minimum or maximum widths ---------------

def _column_widths(columns: Sequence[Column], cells: Sequence[Sequence[str]], available: int) -> list[int]:
    """The width of each column, padding included."""
    available = max(0, available)
    widths = [_column_measure(index, cells, available)[1] or 1 for index in range(len(columns))]
    if sum(widths) > available:
        widths = _collapse(widths, [not column.no_wrap for column in columns], available)
        if sum(widths) > available:
            widths = _ratio_reduce(sum(widths) - available, [1] * len(widths), widths, widths)
        widths = [_column_measure(index, cells, width)[1] for index, width in enumerate(widths)]
    return widths


def _column_measure(index: int, cells: Sequence[Sequence[str]], limit: int) -> tuple[int, int]:
    if limit < 1:
        return 0, 0
    measures = [_padded_measure(row[index], limit) for row in cells]
    return min(max(low for low, _ in measures), limit), min(max(high for _, high in measures), limit)


def _padded_measure(text: str, limit: int) -> tuple[int, int]:
    """rich's Measurement.get of Padding(Text(text), (0, 1)) within `limit` cells."""
    if limit - _PADDING < 1:
        low, high = limit, limit
    else:
        low, high = _limited(_text_measure(text), limit)
        low, high = min(low + _PADDING, limit), min(high + _PADDING, limit)
    return _limited((low, high), limit)


def _text_measure(text: str) -> tuple[int, int]:
    """The longest word and the longest line, in cells."""
    lines = text.splitlines()
    longest_line = max(map(cell_len, lines)) if lines else 0
    words = text.split()
    return (max(map(cell_len, words)) if words else longest_line), longest_line


def _limited(measure: tuple[int, int], limit: int) -> tuple[int, int]:
    """Measurement.get's normalize, with_maximum, and (0, 0) when nothing fits."""
    low, high = _normalized(*measure)
    low, high = min(low, limit), min(high, limit)
    return (0, 0) if high < 1 else _normalized(low, high)


def _normalized(low: int, high: int) -> tuple[int, int]:
    low = min(max(0, low), high)
    return max(0, low), max(0, low, high)


def _collapse(widths: list[int], wrapable: list[bool], available: int) -> list[int]:
    """rich's Table._collapse_widths: narrow the widest wrapable columns until the table fits, if it can."""
    total = sum(widths)
    excess = total - available
    if any(wrapable):
        while total and excess > 0:
            pairs = list(zip(widths, wrapable, strict=True))
            widest = max(width for width, allowed in pairs if allowed)
            second = max(width if allowed and width != widest else 0 for width, allowed in pairs)
            difference = widest - second
            ratios = [1 if (width == widest and allowed) else 0 for width, allowed in pairs]
            if not any(ratios) or not difference:
                break
            widths = _ratio_reduce(excess, ratios, [min(excess, difference)] * len(widths), widths)
            total = sum(widths)
            excess = total - available
    return widths


def _ratio_reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]) -> list[int]:
    """rich._ratio.ratio_reduce."""
    ratios = [ratio if maximum else 0 for ratio, maximum in zip(ratios, maximums, strict=True)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining = total
    result: list[int] = []
    for ratio, maximum, value in zip(ratios, maximums, values, strict=True):
        if ratio and total_ratio > 0:
            distributed = min(maximum, round(ratio * remaining / total_ratio))
            result.append(value - distributed)
            remaining -= distributed
            total_ratio -= ratio
        else:
            result.append(value)
    return result


# -- rich's Text.wrap with overflow "ellipsis", then padded to the cell ----------------------------------------

def _cell_lines(text: str, column: Column, width: int) -> list[str]:
    """The lines of one cell, each exactly `width` cells wide."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        pieces = [paragraph] if column.no_wrap else _wrapped(paragraph, width)
        for piece in pieces:
            if column.justify == "left":
                piece = _truncated(piece, width, pad=True)
            else:
                piece = _truncated(piece.rstrip(), width)
                piece = " " * max(0, width - cell_len(piece)) + piece
            lines.append(set_cell_size(_truncated(piece, width), width))
    return lines


def _wrapped(paragraph: str, width: int) -> list[str]:
    """rich's divide_line without folding (a word too long for a line gets a line of its own, cut later)."""
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(paragraph):
        start, word = match.start(), match.group(0)
        length = cell_len(word.rstrip())
        if width - offset >= length:
            offset += cell_len(word)
        elif length > width:
            if start:
                breaks.append(start)
            offset = cell_len(word)
        elif offset and start:
            breaks.append(start)
            offset = cell_len(word)
    bounds = [0, *breaks, len(paragraph)]
    return [_without_overflowing_space(paragraph[start:end], width) for start, end in itertools.pairwise(bounds)]


def _without_overflowing_space(line: str, width: int) -> str:
    """rich's Text.rstrip_end: trailing whitespace beyond `width` characters goes."""
    excess = len(line) - width
    if excess > 0:
        spaces = _TRAILING_SPACE.search(line)
        if spaces is not None:
            line = line[: len(line) - min(len(spaces.group(0)), excess)]
    return line


def _truncated(line: str, width: int, pad: bool = False) -> str:
    """rich's Text.truncate with overflow "ellipsis"."""
    length = cell_len(line)
    if length > width:
        line = set_cell_size(line, width - 1) + "…"
    if pad and length < width:
        line += " " * (width - length)
    return line
