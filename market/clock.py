"""The simulated clock's units: a run's times are integer seconds since the market opened."""

from __future__ import annotations

HOUR = 3600
"""Seconds in an hour."""
DAY = 86_400
"""Seconds in a day (a simulated day runs midnight to midnight; working hours are a part of it)."""

__all__ = ["DAY", "HOUR"]
