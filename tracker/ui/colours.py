"""How productivity scores look, shared by every view that shows one (rich style names)."""

from __future__ import annotations

import math

_STYLES = {-2: "bold red", -1: "red", 0: "yellow", 1: "green", 2: "bold green"}
_LABELS = {-2: "very distracting", -1: "distracting", 0: "neutral", 1: "productive", 2: "very productive"}


def _band(score: float) -> int:
    """The nearest whole score, halves away from zero, so -0.5 and 0.5 are not both neutral."""
    whole = math.floor(abs(score) + 0.5)
    return max(-2, min(2, int(math.copysign(whole, score))))


def score_style(score: float | None) -> str:
    """A rich style: very distracting in bold red, through neutral yellow, to very productive bold green; dim
    when there is no score."""
    return "dim" if score is None else _STYLES[_band(score)]


def score_label(score: float) -> str:
    """'very distracting' .. 'very productive', RescueTime's words for -2 .. 2."""
    return _LABELS[_band(score)]
