"""Runtime configuration, read once from the environment by the composition roots."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PREFIX = "ORCHESTRATOR_"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{PREFIX}{name} must be an integer, got {raw!r}") from exc


def _hours(env: Mapping[str, str], name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = env.get(PREFIX + name)
    if raw is None:
        return default
    try:
        return tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"{PREFIX}{name} must be hours separated by commas, got {raw!r}") from exc


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of the service. Tests build it directly; production calls ``from_env()``.

    ``database_url`` / ``redis_url`` left empty means "start the embedded servers" (development).
    """

    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path(".data")
    host: str = "127.0.0.1"
    port: int = 8000
    token_secret: str = ""
    token_ttl_hours: int = 12
    public_base_url: str = "http://127.0.0.1:8000"
    hold_ttl_minutes: int = 10
    cancel_cutoff_minutes: int = 120
    availability_max_days: int = 62
    public_rate_limit_per_minute: int = 120
    max_in_flight: int = 64  # per API process; more at once get 503 + Retry-After (0: no limit)
    # Twilio. No account SID: the local Twilio (``channels/local_twilio.py``) stands in for it.
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""  # the sender number, or ...
    twilio_messaging_service_sid: str = ""  # ... a Messaging Service (takes precedence)
    twilio_api_url: str = "https://api.twilio.com"
    # E-mail. No SMTP host: the local SMTP server (``channels/local_smtp.py``) takes the messages.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_tls: str = "starttls"  # "starttls", "tls" (implicit, port 465) or "none"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "orchestrator@localhost"  # the From address (and the invitations' organizer)
    smtp_timeout_seconds: int = 20
    quiet_hours: str = "20:00-08:00"  # agency local time; no reminder is sent in between
    reminder_offsets_hours: tuple[float, ...] = (48.0, 2.0)
    sms_per_number_per_hour: int = 6  # outbound to one number; more wait for the next hour
    sms_inbound_per_number_per_hour: int = 30  # inbound from one number; more are not answered
    outbox_grace_seconds: int = 10  # a pending row older than this is re-enqueued by the sweeper
    outbox_stale_seconds: int = 120  # a row 'sending' this long is reconciled with the provider
    calendar_allow_private: bool = False  # fetch calendars on private addresses (an intranet CalDAV)
    job_queue: str = "arq:queue"  # the Redis key of the arq queue (deployments sharing a Redis differ)
    log_level: str = "INFO"
    log_json: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        defaults = cls()
        return cls(
            database_url=env.get(PREFIX + "DATABASE_URL") or None,
            redis_url=env.get(PREFIX + "REDIS_URL") or None,
            data_dir=Path(env.get(PREFIX + "DATA_DIR") or defaults.data_dir),
            host=env.get(PREFIX + "HOST") or defaults.host,
            port=_int(env, "PORT", defaults.port),
            token_secret=env.get(PREFIX + "TOKEN_SECRET", ""),
            token_ttl_hours=_int(env, "TOKEN_TTL_HOURS", defaults.token_ttl_hours),
            public_base_url=env.get(PREFIX + "PUBLIC_BASE_URL") or defaults.public_base_url,
            hold_ttl_minutes=_int(env, "HOLD_TTL_MINUTES", defaults.hold_ttl_minutes),
            cancel_cutoff_minutes=_int(env, "CANCEL_CUTOFF_MINUTES", defaults.cancel_cutoff_minutes),
            availability_max_days=_int(env, "AVAILABILITY_MAX_DAYS", defaults.availability_max_days),
            public_rate_limit_per_minute=_int(
                env, "PUBLIC_RATE_LIMIT_PER_MINUTE", defaults.public_rate_limit_per_minute
            ),
            max_in_flight=_int(env, "MAX_IN_FLIGHT", defaults.max_in_flight),
            twilio_account_sid=env.get(PREFIX + "TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=env.get(PREFIX + "TWILIO_AUTH_TOKEN", ""),
            twilio_from=env.get(PREFIX + "TWILIO_FROM", ""),
            twilio_messaging_service_sid=env.get(PREFIX + "TWILIO_MESSAGING_SERVICE_SID", ""),
            twilio_api_url=env.get(PREFIX + "TWILIO_API_URL") or defaults.twilio_api_url,
            smtp_host=env.get(PREFIX + "SMTP_HOST", ""),
            smtp_port=_int(env, "SMTP_PORT", defaults.smtp_port),
            smtp_tls=(env.get(PREFIX + "SMTP_TLS") or defaults.smtp_tls).lower(),
            smtp_username=env.get(PREFIX + "SMTP_USERNAME", ""),
            smtp_password=env.get(PREFIX + "SMTP_PASSWORD", ""),
            smtp_from=env.get(PREFIX + "SMTP_FROM") or defaults.smtp_from,
            smtp_timeout_seconds=_int(env, "SMTP_TIMEOUT_SECONDS", defaults.smtp_timeout_seconds),
            quiet_hours=env.get(PREFIX + "QUIET_HOURS", defaults.quiet_hours),
            reminder_offsets_hours=_hours(env, "REMINDER_OFFSETS_HOURS", defaults.reminder_offsets_hours),
            sms_per_number_per_hour=_int(env, "SMS_PER_NUMBER_PER_HOUR", defaults.sms_per_number_per_hour),
            sms_inbound_per_number_per_hour=_int(
                env, "SMS_INBOUND_PER_NUMBER_PER_HOUR", defaults.sms_inbound_per_number_per_hour
            ),
            outbox_grace_seconds=_int(env, "OUTBOX_GRACE_SECONDS", defaults.outbox_grace_seconds),
            outbox_stale_seconds=_int(env, "OUTBOX_STALE_SECONDS", defaults.outbox_stale_seconds),
            job_queue=env.get(PREFIX + "JOB_QUEUE") or defaults.job_queue,
            calendar_allow_private=env.get(PREFIX + "CALENDAR_ALLOW_PRIVATE", "0") in {"1", "true", "yes"},
            log_level=(env.get(PREFIX + "LOG_LEVEL") or defaults.log_level).upper(),
            log_json=(env.get(PREFIX + "LOG_JSON", "1") not in {"0", "false", "no"}),
        )

    @property
    def local_twilio(self) -> bool:
        """No Twilio account configured: messages go to the local Twilio (demo, tests)."""
        return not self.twilio_account_sid

    @property
    def local_smtp(self) -> bool:
        """No SMTP host configured: e-mails go to the local SMTP server (demo, tests)."""
        return not self.smtp_host

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None
