"""100 concurrent accepts on one slot: wall time, latency percentiles and the number of winners.

Each accept is the real use case (`replies.accept`) on its own thread and database connection,
all released by one barrier, against a slot offered to 100 patients at once. Repeated 5 times.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.common import percentile, scratch_database
from waitlist.adapters import database
from waitlist.adapters.messenger import RecordingMessenger
from waitlist.config import Settings
from waitlist.service_layer import dispatch, replies, staff
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork

CONCURRENCY = 100
RUNS = 5


def one_run(session_factory, settings: Settings, run: int) -> tuple[float, list[float], Counter]:
    clock = FakeClock(datetime(2026, 12, 1, 15, 0, tzinfo=UTC) + timedelta(days=10 * run))
    uow = UnitOfWork(session_factory)
    now = clock.now()
    provider = staff.create_provider(uow, f"Dr. {run}", f"type{run}", now, "bench")["id"]
    phones = [f"+1202555{run}{n:03d}" for n in range(CONCURRENCY)]
    for phone in phones:
        patient = staff.create_patient(uow, phone, "P", "en", "bench", now, "bench")["id"]
        data = staff.EntryInput(provider_type=f"type{run}")
        staff.add_to_waitlist(uow, patient, data, {"provider_type"}, now, settings, "bench")
    start = now + timedelta(days=2)
    staff.create_cancellation(
        uow, provider, "Main", start, start + timedelta(minutes=30), now, settings, "bench"
    )
    dispatch.dispatch_due(uow, RecordingMessenger(), clock, settings, limit=1000)

    barrier = threading.Barrier(CONCURRENCY + 1)
    latencies = [0.0] * CONCURRENCY
    outcomes: list[str] = [""] * CONCURRENCY

    def accept(n: int) -> None:
        barrier.wait()
        t0 = time.perf_counter()
        answer = replies.accept(
            UnitOfWork(session_factory), settings, now + timedelta(minutes=1), phones[n], f"B{run}-{n}"
        )
        latencies[n] = (time.perf_counter() - t0) * 1000
        outcomes[n] = answer["outcome"]

    threads = [threading.Thread(target=accept, args=(n,)) for n in range(CONCURRENCY)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return (time.perf_counter() - t0) * 1000, latencies, Counter(outcomes)


def main() -> None:
    settings = Settings.from_env({"BATCH_SIZE": str(CONCURRENCY)})
    with scratch_database("bench_claims") as url:
        engine = database.create_engine(url, pool_size=CONCURRENCY)
        session_factory = UnitOfWork.session_factory_for(engine)
        for run in range(RUNS):
            wall, latencies, outcomes = one_run(session_factory, settings, run)
            print(
                f"run {run + 1}: {CONCURRENCY} concurrent accepts in {wall:.0f} ms wall; "
                f"latency p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, "
                f"max {max(latencies):.0f} ms; winners {outcomes['claimed']}, "
                f"told too late {outcomes['too_late']}"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
