"""`python -m simulation`: run every policy on the same seeds and write results/simulation/.

python -m simulation --scenario calibrated --seeds 10 --workers 2
python -m simulation --replay our_cancellations.csv     (provider,slot_start,cancelled_at)
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import sys
import time
import uuid
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, replace
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine, make_url
from tqdm import tqdm

from simulation import report
from simulation.figures import per_seed
from simulation.runner import RunResult, run_one
from simulation.scenario import Policy, Scenario, load
from waitlist.adapters import database, migrations, orm

LOCAL_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

# set in each worker process by _start_worker
_engine: Engine | None = None


def admin_url() -> str:
    return os.environ.get("TEST_DATABASE_ADMIN_URL") or LOCAL_ADMIN


def _admin(sql: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql)


def create_database() -> tuple[str, str]:
    """A fresh database migrated to head; its name and URL."""
    name = f"waitlist_sim_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    # a lost commit costs a simulated run nothing; waiting for each fsync costs most of its time
    _admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    url = make_url(admin_url()).set(database=name).render_as_string(hide_password=False)
    migrations.upgrade(url)
    return name, url


def _start_worker(urls: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    global _engine
    orm.start_mappers()
    _engine = database.create_engine(urls.get(), pool_size=2)


def _run(scenario: Scenario, policy: Policy, seed: int) -> RunResult:
    assert _engine is not None
    return run_one(_engine, scenario, policy, seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulation", description=__doc__)
    parser.add_argument("--scenario", default="default", help="a name under scenarios/ or a path")
    parser.add_argument("--seeds", type=int, help="seeds per policy (default: the scenario's)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--workers", type=int, help="processes (default: the scenario's)")
    parser.add_argument("--policies", help="comma-separated subset of the scenario's policies")
    parser.add_argument(
        "--replay", help="CSV of past cancellations: provider,slot_start,cancelled_at"
    )
    parser.add_argument("--out", help="output folder (default results/simulation[/<scenario>])")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--from-runs", help="write the outputs again from a runs.json, without simulating"
    )
    args = parser.parse_args(argv)

    scenario = load(args.scenario)
    if args.replay:
        scenario = replace(scenario, replay_csv=args.replay)
    policies = scenario.policies
    if args.policies:
        wanted = args.policies.split(",")
        policies = [p for p in policies if p.name in wanted]
    seeds = list(range(args.first_seed, args.first_seed + (args.seeds or scenario.seeds)))
    workers = max(1, min(args.workers or scenario.workers, len(seeds) * len(policies)))
    default_out = (
        "results/simulation"
        if scenario.name == "default"
        else f"results/simulation/{scenario.name}"
    )
    out = Path(args.out or default_out)

    if args.from_runs:
        saved = json.loads(Path(args.from_runs).read_text())
        runs = {
            name: [RunResult(**run) for run in policy_runs]
            for name, policy_runs in saved["runs"].items()
        }
        report.write_all(out, scenario, runs, saved["wall_seconds"])
        print((out / "summary.csv").read_text(), end="")
        return 0

    started = time.perf_counter()
    made = [create_database() for _ in range(workers)]
    runs: dict[str, list[RunResult]] = {p.name: [] for p in policies}
    try:
        context = multiprocessing.get_context("fork")
        urls = context.Queue()
        for _, url in made:
            urls.put(url)
        # the costliest policies first, so that the two workers end together
        tasks = [(policy, seed) for seed in seeds for policy in policies]
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(urls,)
        ) as pool:
            futures: dict[Future[RunResult], tuple[str, int]] = {
                pool.submit(_run, scenario, policy, seed): (policy.name, seed)
                for policy, seed in tasks
            }
            bar = tqdm(
                as_completed(futures),
                total=len(futures),
                desc=f"simulating {scenario.name}",
                unit="run",
                disable=args.quiet,
                file=sys.stderr,
            )
            try:
                for future in bar:
                    result = future.result()
                    runs[result.policy].append(result)
                    bar.set_postfix_str(f"{result.policy} seed {result.seed}")
            except BaseException:
                # Ctrl-C or a failed run: do not wait for the runs still queued
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        for name, _ in made:
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for policy_runs in runs.values():
        policy_runs.sort(key=lambda r: r.seed)
    wall = time.perf_counter() - started
    summaries = report.write_all(out, scenario, runs, wall)
    write_runs(out / "runs.csv", runs)
    (out / "runs.json").write_text(
        json.dumps(
            {
                "wall_seconds": wall,
                "runs": {name: [asdict(r) for r in rs] for name, rs in runs.items()},
            }
        )
    )
    print(
        f"{scenario.name}: {len(seeds)} seeds x {len(policies)} policies in {wall:.0f} s -> {out}"
    )
    print((out / "summary.csv").read_text(), end="")
    for line in report.goal_checks(summaries):
        print(line)
    return 0


def write_runs(path: Path, runs: dict[str, list[RunResult]]) -> None:
    """Every run's own figures, for anyone who wants to look past the means."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        header_written = False
        for policy, policy_runs in runs.items():
            for run in policy_runs:
                figures = per_seed(run)
                if not header_written:
                    writer.writerow(
                        [
                            "policy",
                            "seed",
                            "cancellations",
                            "filled",
                            "texts",
                            "offers",
                            "disappointed",
                            "wall_seconds",
                            *figures,
                        ]
                    )
                    header_written = True
                writer.writerow(
                    [
                        policy,
                        run.seed,
                        run.cancellations,
                        run.filled,
                        run.texts,
                        run.offers,
                        run.disappointed,
                        f"{run.wall_seconds:.1f}",
                        *(f"{v:.4f}" for v in figures.values()),
                    ]
                )


if __name__ == "__main__":
    sys.exit(main())
