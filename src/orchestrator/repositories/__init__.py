"""Named queries: rows ⇄ core types. ``calendars`` (counsellor time, claims) and ``queue*`` (walk-ins)."""
