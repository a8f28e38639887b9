"""The data window a run works on: an inclusive range of dates, never derived from ``now()``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Window:
    """Inclusive date range ``[start, end]``."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window end {self.end} is before start {self.start}")

    @classmethod
    def parse(cls, start: str | dt.date, end: str | dt.date | None = None) -> Window:
        s = start if isinstance(start, dt.date) else dt.date.fromisoformat(str(start)[:10])
        e = s if end is None else (end if isinstance(end, dt.date) else dt.date.fromisoformat(str(end)[:10]))
        return cls(s, e)

    @classmethod
    def from_interval(cls, start: dt.datetime, end: dt.datetime) -> Window:
        """An Airflow data interval ``[start, end)`` as the inclusive dates it covers."""
        last = end - dt.timedelta(microseconds=1) if end > start else end
        return cls(start.date(), last.date())

    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def params(self) -> dict[str, dt.date]:
        """Query parameters ``@start`` / ``@end``."""
        return {"start": self.start, "end": self.end}

    def to_json(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    def union(self, other: Window) -> Window:
        return Window(min(self.start, other.start), max(self.end, other.end))

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"
