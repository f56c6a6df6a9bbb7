"""``orchestrator simulate``: siloed against unified on the same simulated days, as a table (a
progress bar on stderr while it runs), as JSON (``--json``), and as a chart (``--plot``)."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from orchestrator.scheduling.agency_sim import PROFILES, Profile, simulate

# (label, path in a policy's report) of the table's rows
ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("walk-ins + callbacks: p90 wait (min)", ("p90_wait_minutes_walkin_callback",)),
    ("walk-ins + callbacks: mean wait (min)", ("mean_wait_minutes_walkin_callback",)),
    ("walk-ins: mean wait (min)", ("walk_in", "mean_wait_minutes")),
    ("walk-ins: p90 wait (min)", ("walk_in", "p90_wait_minutes")),
    ("walk-ins: served within target", ("walk_in", "within_target")),
    ("callbacks: p90 wait (min)", ("callback", "p90_wait_minutes")),
    ("callbacks: within deadline", ("callback", "within_deadline")),
    ("bookings: p90 lateness (min)", ("booking", "p90_lateness_minutes")),
    ("bookings: got a slot", ("booking", "booked")),
    ("priority needs: p90 wait (min)", ("priority", "p90_wait_minutes")),
    ("others: p90 wait (min)", ("priority", "others_p90_wait_minutes")),
    ("served in their preferred mode", ("served_in_preferred_mode",)),
    ("counsellor utilisation", ("utilisation",)),
    ("counsellor idle hours", ("idle_hours",)),
    ("walk-in wait estimate, mean error (min)", ("wait_estimate_error_minutes", "ours_mean_abs")),
    ("  the ZMS formula's, same walk-ins (min)", ("wait_estimate_error_minutes", "zms_mean_abs")),
)


def load_profile(path: Path) -> Profile:
    """A profile from a JSON file: the fields of :class:`Profile` (durations in minutes)."""
    return profile_of(json.loads(path.read_text()))


def profile_of(fields: dict[str, Any]) -> Profile:
    """A :class:`Profile` from plain fields (a JSON file, or an agency's history)."""
    data = dict(fields)
    for key in ("callback_deadline", "priority_callback_deadline", "no_show_grace"):
        if key in data:
            data[key] = timedelta(minutes=float(data[key]))
    data["hours"] = tuple(tuple(pair) for pair in data["hours"])
    for key in ("walk_ins", "callbacks"):
        data[key] = tuple(float(x) for x in data[key])
    known = {f.name for f in dataclasses.fields(Profile)}
    unknown = set(data) - known
    if unknown:
        raise SystemExit(f"unknown profile fields {', '.join(sorted(unknown))}")
    return Profile(**data)


def progress_bar(out: TextIO) -> Any:
    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // total
        out.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} days")
        if done == total:
            out.write("\n")
        out.flush()

    return show


def table(report: dict[str, Any]) -> str:
    policies = report["policies"]
    lines = [
        f"{report['profile']}: {report['days']} days, seed {report['seed']}",
        f"  {'':40} {'siloed':>10} {'unified':>10}",
    ]
    for label, path in ROWS:
        values = []
        for policy in ("siloed", "unified"):
            value: Any = policies[policy]
            for key in path:
                value = value[key]
            values.append(f"{'-' if value is None else value:>10}")
        lines.append(f"  {label:40} {' '.join(values)}")
    lines.append(
        f"  unified p90 wait of walk-ins and callbacks vs siloed: {report['p90_gain_percent']:+}% lower"
    )
    return "\n".join(lines)


def plot(reports: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'orchestrator[plot]'") from None
    fig, axes = plt.subplots(1, len(reports), figsize=(5 * len(reports), 4), squeeze=False)
    for axis, report in zip(axes[0], reports, strict=True):
        for policy, data in report["policies"].items():
            by_hour = data["mean_wait_by_hour_walkin_callback"]
            axis.plot([int(h) for h in by_hour], list(by_hour.values()), marker="o", label=policy)
        axis.set_title(report["profile"])
        axis.set_xlabel("hour of arrival (local)")
        axis.set_ylabel("mean wait, walk-ins and callbacks (min)")
        axis.legend()
    fig.tight_layout()
    fig.savefig(path)


def run(profiles: list[Profile], *, days: int, seed: int, as_json: bool, plot_to: Path | None) -> int:
    reports = []
    for profile in profiles:
        if not as_json:
            print(f"simulating {profile.name} ({profile.counsellors} counsellors)…", file=sys.stderr)
        bar = progress_bar(sys.stderr) if sys.stderr.isatty() or not as_json else None
        reports.append(simulate(profile, days=days, seed=seed, progress=bar))
    if as_json:
        print(json.dumps({"reports": reports}, indent=2))
    else:
        print("\n\n".join(table(r) for r in reports))
    if plot_to is not None:
        plot(reports, plot_to)
    return 0


def profiles_named(names: list[str], files: list[Path]) -> list[Profile]:
    chosen = [load_profile(f) for f in files]
    for name in names:
        if name == "all":
            chosen += list(PROFILES.values())
        elif name in PROFILES:
            chosen.append(PROFILES[name])
        else:
            raise SystemExit(f"unknown profile {name!r}: {', '.join([*PROFILES, 'all'])}")
    return chosen
