"""Durations for people: ``0:12:05`` for an ETA or an elapsed time."""
from __future__ import annotations

import datetime


def format_eta(seconds: float) -> str:
    """Whole seconds as H:MM:SS (negative values read as zero)."""
    return str(datetime.timedelta(seconds=int(max(0.0, seconds))))
