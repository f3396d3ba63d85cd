"""Simulator settings, read from the environment (defaults suit a local `make run`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# Same defaults as documented in sms_simulator/README.md; the Rasa channel and the backend
# must use the same account and token for signatures and basic auth to match.
DEFAULT_ACCOUNT_SID = "AC00000000000000000000000000000000"
DEFAULT_AUTH_TOKEN = "simulator-auth-token"
DEFAULT_FROM_NUMBER = "+12025550100"
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_INBOUND_URL = "http://127.0.0.1:5005/webhooks/twilio/webhook"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
DEFAULT_STATUS_DELAY = 0.5
DEFAULT_WEBHOOK_TIMEOUT = 30.0


def _get(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class Settings:
    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = DEFAULT_AUTH_TOKEN
    # The clinic's number: sender of outbound SMS, recipient of the patients' texts.
    from_number: str = DEFAULT_FROM_NUMBER
    messaging_service_sid: str | None = None
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL
    inbound_url: str = DEFAULT_INBOUND_URL
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Seconds between queued -> sent -> delivered.
    status_delay: float = DEFAULT_STATUS_DELAY
    # Twilio's Advanced Opt-Out: Twilio answers STOP/START/HELP itself and sets OptOutType
    advanced_opt_out: bool = False
    webhook_timeout: float = DEFAULT_WEBHOOK_TIMEOUT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            account_sid=_get(env, "TWILIO_ACCOUNT_SID", DEFAULT_ACCOUNT_SID),
            auth_token=_get(env, "TWILIO_AUTH_TOKEN", DEFAULT_AUTH_TOKEN),
            from_number=_get(env, "TWILIO_FROM_NUMBER", DEFAULT_FROM_NUMBER),
            messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID", "").strip() or None,
            public_base_url=_get(env, "PUBLIC_BASE_URL", DEFAULT_PUBLIC_BASE_URL).rstrip("/"),
            inbound_url=_get(env, "SIMULATOR_INBOUND_URL", DEFAULT_INBOUND_URL),
            host=_get(env, "SIMULATOR_HOST", DEFAULT_HOST),
            port=int(_get(env, "SIMULATOR_PORT", str(DEFAULT_PORT))),
            status_delay=float(_get(env, "SIMULATOR_STATUS_DELAY", str(DEFAULT_STATUS_DELAY))),
            advanced_opt_out=_get(env, "SIMULATOR_ADVANCED_OPT_OUT", "0").lower()
            in ("1", "true", "yes", "on"),
            webhook_timeout=float(
                _get(env, "SIMULATOR_WEBHOOK_TIMEOUT", str(DEFAULT_WEBHOOK_TIMEOUT))
            ),
        )
