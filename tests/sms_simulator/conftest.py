"""Fixtures for the SMS simulator tests: one simulator process and one local receiver."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sms_simulator_testkit import (
    Receiver,
    RunningSimulator,
    start_receiver,
    start_simulator,
    stop_simulator,
)

WEBHOOK_PATH = "/webhooks/twilio/webhook"


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    server = start_receiver()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="session")
def simulator_process(receiver: Receiver) -> Iterator[RunningSimulator]:
    running = start_simulator(receiver.url + WEBHOOK_PATH)
    yield running
    stop_simulator(running)


@pytest.fixture
def simulator(simulator_process: RunningSimulator, receiver: Receiver) -> RunningSimulator:
    """The shared simulator, emptied before each test."""
    httpx.post(simulator_process.url + "/simulator/reset").raise_for_status()
    receiver.clear()
    return simulator_process
