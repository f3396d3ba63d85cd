"""Prometheus metrics (prometheus-client), served at GET /metrics. What to watch is in the README."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

SENDS = Counter(
    "waitlist_sms_sends_total",
    "Proactive texts handed to Rasa and Twilio, by kind and outcome (sent, retry, refused)",
    ["kind", "outcome"],
)
MESSAGING_PAUSED = Gauge(
    "waitlist_messaging_paused", "1 while the circuit breaker pauses offering (texts cannot leave)"
)
FAILURES_IN_A_ROW = Gauge("waitlist_send_failures_in_a_row", "Failed sends since the last success")
OUTBOX_DEPTH = Gauge("waitlist_outbox_depth", "Texts waiting to leave or leaving now")
CLAIM_SECONDS = Histogram(
    "waitlist_claim_seconds",
    "Time to answer a patient's yes (the claim transaction and its reply)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
REPLIES = Counter(
    "waitlist_patient_replies_total",
    "Patient replies applied, by what the assistant understood (kind) and the outcome",
    ["kind", "outcome"],
)
SCHEDULER_TICK = Gauge(
    "waitlist_scheduler_last_tick_timestamp_seconds", "When the background sweep last ran"
)


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
