"""Settings, read once from the environment. Every behavioural number lives here."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from zoneinfo import ZoneInfo

from waitlist.domain.model import AdaptiveRule, ContactHours, OfferingPolicy, ScoringPolicy


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def parse_contact_hours(raw: str) -> ContactHours:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", raw)
    if not match:
        raise SettingsError(f"CONTACT_HOURS must look like 08:00-20:00, got {raw!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        start, end = time(h1, m1), time(h2, m2)
    except ValueError as exc:
        raise SettingsError(f"CONTACT_HOURS has an impossible time: {raw!r}") from exc
    if start >= end:
        raise SettingsError(f"CONTACT_HOURS must start before it ends, got {raw!r}")
    return ContactHours(start=start, end=end)


BATCH_MODES = ("rolling", "strict", "adaptive")
DEFAULT_BATCH_MODE = "rolling"


def _fraction(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number between 0 and 1, got {raw!r}") from exc
    if not 0 < value < 1:
        raise SettingsError(f"{name} must be between 0 and 1 (exclusive), got {value}")
    return value


def parse_adaptive_rule(env: dict[str, str]) -> AdaptiveRule:
    """BATCH_MODE=adaptive's numbers (docs/adaptive-offering.md); the defaults are the rule's."""
    base = AdaptiveRule()

    def minutes(name: str, default: timedelta) -> timedelta:
        return timedelta(minutes=_int(env, name, int(default.total_seconds() // 60), minimum=1))

    rule = AdaptiveRule(
        target=_fraction(env, "ADAPTIVE_TARGET", base.target),
        horizon=minutes("ADAPTIVE_HORIZON_MINUTES", base.horizon),
        min_batch=_int(env, "ADAPTIVE_MIN_BATCH", base.min_batch, minimum=1),
        max_batch=_int(env, "ADAPTIVE_MAX_BATCH", base.max_batch, minimum=1),
        min_hold=minutes("ADAPTIVE_MIN_HOLD_MINUTES", base.min_hold),
        max_hold=minutes("ADAPTIVE_MAX_HOLD_MINUTES", base.max_hold),
        prior_acceptance=_fraction(env, "ADAPTIVE_PRIOR_ACCEPTANCE", base.prior_acceptance),
        prior_weight=_int(env, "ADAPTIVE_PRIOR_WEIGHT", base.prior_weight, minimum=1),
        prior_reply=minutes("ADAPTIVE_PRIOR_REPLY_MINUTES", base.prior_reply),
        history=timedelta(days=_int(env, "ADAPTIVE_HISTORY_DAYS", 28, minimum=1)),
    )
    if rule.max_batch < rule.min_batch:
        raise SettingsError("ADAPTIVE_MAX_BATCH must be at least ADAPTIVE_MIN_BATCH")
    if rule.max_hold < rule.min_hold:
        raise SettingsError("ADAPTIVE_MAX_HOLD_MINUTES must be at least ADAPTIVE_MIN_HOLD_MINUTES")
    return rule


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    clinic_timezone: ZoneInfo
    offering: OfferingPolicy
    scoring: ScoringPolicy = field(default_factory=ScoringPolicy)
    staff_api_token: str = "dev-staff-token"
    actions_api_token: str = "dev-actions-token"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_api_token: str = "dev-rasa-token"
    public_base_url: str = "http://127.0.0.1:8000"
    twilio_auth_token: str = ""
    sweep_seconds: int = 5
    data_dir: str = ".data"
    # an offer whose text could not leave within this bound is released without penalty
    offer_send_deadline: timedelta = timedelta(minutes=10)
    # this many failed sends in a row pause all offering until a text leaves again
    failures_to_pause: int = 5
    # a paused breaker lets offers through again this long after the last failure (their sends
    # are the probe: one failure pauses again at once)
    pause_probe_after: timedelta = timedelta(seconds=60)
    # how long one send may take before another dispatcher takes the message over
    send_lease: timedelta = timedelta(seconds=60)
    # a booking nobody has entered in the practice's schedule after this long is highlighted
    schedule_entry_due: timedelta = timedelta(minutes=15)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        tz_name = env.get("CLINIC_TIMEZONE", "").strip() or "America/New_York"
        try:
            tz = ZoneInfo(tz_name)
        except Exception as exc:  # ZoneInfo raises several types for a bad key
            raise SettingsError(f"CLINIC_TIMEZONE is not a known time zone: {tz_name!r}") from exc
        batching = env.get("BATCH_MODE", "").strip().lower() or DEFAULT_BATCH_MODE
        if batching not in BATCH_MODES:
            raise SettingsError(
                f"BATCH_MODE must be {', '.join(BATCH_MODES[:-1])} or {BATCH_MODES[-1]},"
                f" got {batching!r}"
            )
        adaptive = parse_adaptive_rule(env) if batching == "adaptive" else None
        offering = OfferingPolicy(
            # adaptive mode: the rule's ceiling, so the sweep looks at every slot with a free seat
            batch_size=adaptive.max_batch if adaptive else _int(env, "BATCH_SIZE", 3, minimum=1),
            hold=timedelta(minutes=_int(env, "HOLD_MINUTES", 7, minimum=1)),
            lead_time=timedelta(minutes=_int(env, "LEAD_TIME_MINUTES", 60)),
            contact_hours=parse_contact_hours(env.get("CONTACT_HOURS", "") or "08:00-20:00"),
            daily_cap=_int(env, "DAILY_OFFER_CAP", 3, minimum=1),
            weekly_cap=_int(env, "WEEKLY_OFFER_CAP", 6, minimum=1),
            strict_batches=batching == "strict",
            timezone=tz,
            adaptive=adaptive,
        )
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            clinic_timezone=tz,
            offering=offering,
            staff_api_token=env.get("STAFF_API_TOKEN") or "dev-staff-token",
            actions_api_token=env.get("ACTIONS_API_TOKEN") or "dev-actions-token",
            rasa_url=(env.get("RASA_URL") or "http://127.0.0.1:5005").rstrip("/"),
            rasa_api_token=env.get("RASA_API_TOKEN") or "dev-rasa-token",
            public_base_url=(env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or "",
            sweep_seconds=_int(env, "SWEEP_SECONDS", 5, minimum=1),
            data_dir=env.get("DATA_DIR") or ".data",
            offer_send_deadline=timedelta(
                minutes=_int(env, "OFFER_SEND_DEADLINE_MINUTES", 10, minimum=1)
            ),
            failures_to_pause=_int(env, "SEND_FAILURES_TO_PAUSE", 5, minimum=1),
            schedule_entry_due=timedelta(
                minutes=_int(env, "SCHEDULE_ENTRY_DUE_MINUTES", 15, minimum=1)
            ),
        )
