"""Words for counts that messages at every layer share (the sender's notices, `tracker outbox`, the live view)."""

from __future__ import annotations

from tracker.timespec import human_duration


def samples(count: int) -> str:
    """"1 sample", "2 samples": for every message that counts them."""
    return f"{count} sample" + ("" if count == 1 else "s")


def lost_text(count: int, seconds: float) -> str:
    """"12 samples (12s)": what was lost, counted and as time."""
    return f"{samples(count)} ({human_duration(seconds)})"


def unreadable_titles_text(count: int) -> str:
    """What `tracker status` and `tracker doctor` say of a run's samples whose window title could not be read."""
    return f"{samples(count)} recorded with the app only: their window title could not be read"
