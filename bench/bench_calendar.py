"""Calendars: importing a big counsellor calendar, and generating a counsellor's feed.

    python bench/bench_calendar.py [--json out.json]

- **import**: a 5,000-event iCalendar file (4,900 single meetings, 100 weekly series with a
  moved and a cancelled occurrence each, some transparent and all-day events) parsed and
  expanded over 8 weeks by ``channels.calendar_fetch.parse_busy`` (``icalendar`` +
  ``recurring-ical-events``) — what a sync does once the file is downloaded; goal ≤ 2 s.
- **feed**: ``channels.calendar.render`` for a counsellor with 500 items (appointments, some
  cancelled), with its ``VTIMEZONE``; goal ≤ 50 ms.
Medians of 5 runs; no database (the queries around them are the same as any other read).
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import report

from orchestrator import ical
from orchestrator.channels.calendar import render
from orchestrator.channels.calendar_fetch import parse_busy
from orchestrator.ical import CalendarEvent
from orchestrator.services.calendar_feed import Feed

START = datetime(2026, 3, 2, tzinfo=UTC)


def _big_calendar() -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN"]
    for i in range(4900):
        day = START + timedelta(days=i % 56, hours=7 + i % 9)
        stamp = day.strftime("%Y%m%dT%H%M%SZ")
        end = (day + timedelta(minutes=30 + 15 * (i % 3))).strftime("%Y%m%dT%H%M%SZ")
        lines += [
            "BEGIN:VEVENT",
            f"UID:single-{i}@bench",
            f"DTSTART:{stamp}",
            f"DTEND:{end}",
            f"SUMMARY:Meeting {i}",
        ]
        if i % 20 == 0:
            lines.append("TRANSP:TRANSPARENT")
        lines.append("END:VEVENT")
    for i in range(100):
        first = START + timedelta(days=i % 5, hours=8 + i % 8)
        moved = first + timedelta(weeks=2)
        lines += [
            "BEGIN:VEVENT",
            f"UID:series-{i}@bench",
            f"DTSTART:{first.strftime('%Y%m%dT%H%M%SZ')}",
            f"DTEND:{(first + timedelta(hours=1)).strftime('%Y%m%dT%H%M%SZ')}",
            "RRULE:FREQ=WEEKLY;COUNT=30",
            f"EXDATE:{(first + timedelta(weeks=1)).strftime('%Y%m%dT%H%M%SZ')}",
            "END:VEVENT",
            "BEGIN:VEVENT",
            f"UID:series-{i}@bench",
            f"RECURRENCE-ID:{moved.strftime('%Y%m%dT%H%M%SZ')}",
            f"DTSTART:{(moved + timedelta(hours=3)).strftime('%Y%m%dT%H%M%SZ')}",
            f"DTEND:{(moved + timedelta(hours=4)).strftime('%Y%m%dT%H%M%SZ')}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def _timed(run: Any, repeat: int = 5) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1), result


def run() -> dict[str, Any]:
    body = _big_calendar()
    import_ms, spans = _timed(lambda: parse_busy(body, START, START + timedelta(weeks=8), "Europe/Paris"))
    items = [
        CalendarEvent(
            uid=f"appointment-{uuid.UUID(int=i)}@orchestrator",
            start=START + timedelta(hours=i),
            end=START + timedelta(hours=i, minutes=30),
            summary=f"RDV Suivi (par téléphone) {i}",
            description=f"Réf. {i:08d}",
            sequence=i % 3,
            stamp=START,
            cancelled=i % 10 == 0,
        )
        for i in range(500)
    ]
    feed = Feed(
        SimpleNamespace(id=uuid.UUID(int=1), name="Camille Martin"),  # type: ignore[arg-type]
        SimpleNamespace(name="Agence Lyon", timezone="Europe/Paris"),  # type: ignore[arg-type]
        items,
    )

    def cold() -> bytes:
        ical._event_ics.cache_clear()  # every event rendered anew (a first request)
        ical._vtimezone_ics.cache_clear()
        return render(feed)

    cold_ms, rendered = _timed(cold)
    feed_ms, _ = _timed(lambda: render(feed))  # polled again: the events are unchanged
    return {
        "import": {
            "events": 5000,
            "busy_spans": len(spans),
            "bytes": len(body),
            "p50_ms": import_ms,
            "goal_ms": 2000,
        },
        "feed": {
            "items": len(items),
            "bytes": len(rendered),
            "p50_ms": feed_ms,
            "cold_p50_ms": cold_ms,
            "goal_ms": 50,
        },
    }


if __name__ == "__main__":
    report.main(run, __doc__)
