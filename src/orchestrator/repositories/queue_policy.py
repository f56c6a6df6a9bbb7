"""Walk-in queue policy of an agency: ``agencies.queue_policy`` ⇄ the core's :class:`QueuePolicy`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from orchestrator.scheduling.queue import QueuePolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """The core's :class:`QueuePolicy` plus the notification thresholds (0 disables one)."""

    policy: QueuePolicy = field(default_factory=QueuePolicy)
    notify_positions_ahead: int = 3
    notify_minutes_ahead: int = 10
    no_show_grace_minutes: int = 10  # a booked person not checked in this long after the start
    # the capacity plan: walk-in target wait, how far ahead the reserve follows what is seen,
    # and whether measured no-shows let booking take part of the walk-in reserve (off)
    plan_walk_in_target_minutes: int = 15
    plan_release_horizon_minutes: int = 120
    plan_overbook_on_no_shows: bool = False


_MINUTES = {
    "appointment_early_minutes": "appointment_early",
    "default_target_wait_minutes": "default_target_wait",
    "gap_slack_minutes": "gap_slack",
    "recall_min_interval_minutes": "recall_min_interval",
}


def queue_settings(raw: Mapping[str, Any] | None) -> QueueSettings:
    """Read ``agencies.queue_policy``. Keys (all optional):

    ``appointment_early_minutes``, ``default_target_wait_minutes``, ``gap_slack_minutes``,
    ``recall_min_interval_minutes`` (numbers), ``starvation_factor`` (number > 0),
    ``max_calls_before_no_show`` (int ≥ 1), ``language_is_soft``, ``honour_preferred_counsellor``
    (booleans), ``notify_positions_ahead``, ``notify_minutes_ahead``, ``no_show_grace_minutes``
    (ints ≥ 0, 0 = off); for the capacity plan ``plan_walk_in_target_minutes``,
    ``plan_release_horizon_minutes`` (ints ≥ 0) and ``plan_overbook_on_no_shows`` (boolean).
    A bad value is logged and ignored (the default applies): a typo must not stop the desk.
    """
    policy = QueuePolicy()
    notify_positions, notify_minutes, grace = 3, 10, 10
    plan: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        try:
            if key in _MINUTES:
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError("must be a non-negative number of minutes")
                minutes: dict[str, Any] = {_MINUTES[key]: timedelta(minutes=value)}
                policy = replace(policy, **minutes)
            elif key == "starvation_factor":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError("must be a number")
                policy = replace(policy, starvation_factor=float(value))
            elif key == "max_calls_before_no_show":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError("must be an integer")
                policy = replace(policy, max_calls_before_no_show=value)
            elif key in ("plan_walk_in_target_minutes", "plan_release_horizon_minutes"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError("must be a non-negative integer")
                plan[key] = value
            elif key == "plan_overbook_on_no_shows":
                if not isinstance(value, bool):
                    raise ValueError("must be true or false")
                plan[key] = value
            elif key in ("language_is_soft", "honour_preferred_counsellor"):
                if not isinstance(value, bool):
                    raise ValueError("must be true or false")
                flag: dict[str, Any] = {key: value}
                policy = replace(policy, **flag)
            elif key in ("notify_positions_ahead", "notify_minutes_ahead", "no_show_grace_minutes"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError("must be a non-negative integer")
                if key == "notify_positions_ahead":
                    notify_positions = value
                elif key == "notify_minutes_ahead":
                    notify_minutes = value
                else:
                    grace = value
            else:
                raise ValueError("unknown key")
        except ValueError as exc:
            log.warning("ignoring queue policy value", extra={"key": key, "error": str(exc)})
    return QueueSettings(policy, notify_positions, notify_minutes, grace, **plan)


def policy_document(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every policy key with the value in force (stored value, or the default), as JSON."""
    settings = queue_settings(raw)
    policy = settings.policy
    document: dict[str, Any] = {
        key: getattr(policy, name) // timedelta(minutes=1) for key, name in _MINUTES.items()
    }
    document.update(
        starvation_factor=policy.starvation_factor,
        max_calls_before_no_show=policy.max_calls_before_no_show,
        language_is_soft=policy.language_is_soft,
        honour_preferred_counsellor=policy.honour_preferred_counsellor,
        notify_positions_ahead=settings.notify_positions_ahead,
        notify_minutes_ahead=settings.notify_minutes_ahead,
        no_show_grace_minutes=settings.no_show_grace_minutes,
        plan_walk_in_target_minutes=settings.plan_walk_in_target_minutes,
        plan_release_horizon_minutes=settings.plan_release_horizon_minutes,
        plan_overbook_on_no_shows=settings.plan_overbook_on_no_shows,
    )
    return document
