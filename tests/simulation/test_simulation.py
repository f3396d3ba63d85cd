"""The simulator on the tiny scenario: repeatable, and the policies differ the way they must."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from simulation import __main__ as cli
from simulation.figures import per_seed
from simulation.runner import RunResult, run_one
from simulation.scenario import Scenario, load
from waitlist.adapters import database, orm


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    name, url = cli.create_database()
    orm.start_mappers()
    engine = database.create_engine(url, pool_size=2)
    try:
        yield engine
    finally:
        engine.dispose()
        cli._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return load("tiny")


@pytest.fixture(scope="module")
def runs(engine: Engine, tiny: Scenario) -> dict[str, RunResult]:
    return {policy.name: run_one(engine, tiny, policy, seed=1) for policy in tiny.policies}


def test_every_policy_is_simulated(runs: dict[str, RunResult]) -> None:
    assert set(runs) == {"fixed-3x7", "batch-10x5", "all-at-once", "serial-1x30", "adaptive"}
    for run in runs.values():
        assert run.cancellations > 0
        assert run.offers > 0


def test_one_seed_gives_the_same_figures_twice(
    engine: Engine, tiny: Scenario, runs: dict[str, RunResult]
) -> None:
    policy = next(p for p in tiny.policies if p.name == "adaptive")
    again = run_one(engine, tiny, policy, seed=1)
    first, second = per_seed(runs["adaptive"]), per_seed(again)
    for name, value in first.items():
        assert value == second[name] or (math.isnan(value) and math.isnan(second[name])), name
    assert again.batch_sizes == runs["adaptive"].batch_sizes


def test_all_at_once_sends_the_most_texts(runs: dict[str, RunResult]) -> None:
    most = max(runs.values(), key=lambda run: run.texts)
    assert most.policy == "all-at-once"
    assert runs["serial-1x30"].texts < runs["fixed-3x7"].texts


def test_adaptive_batches_say_why(runs: dict[str, RunResult]) -> None:
    assert runs["adaptive"].batch_sizes, "adaptive made no batch"
    assert set(runs["fixed-3x7"].batch_sizes) == {3}
