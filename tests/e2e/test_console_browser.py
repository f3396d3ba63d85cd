"""The staff console in a real Chromium (Debian's, driven by Playwright): log in, enter a slot,
watch its three offers appear, log out. Screenshots go to results/console/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.conftest import Clinic

SHOTS = Path("results/console")
PASSWORD = "front desk password 1"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Chromium is missing: apt-get install chromium chromium-driver (.ci/run does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    yield context.new_page()
    context.close()


def test_log_in_enter_a_slot_see_its_offers_and_log_out(clinic: Clinic, page: Page) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    username = f"desk{datetime.now().strftime('%H%M%S%f')}"
    clinic.api("POST", "/users", json={"username": username, "password": PASSWORD})
    provider = clinic.provider()
    for _ in range(4):
        clinic.patient()

    page.goto(clinic.env["BACKEND_URL"] + "/")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#username", username)
    page.fill("#password", "not the password")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("wrong username or password")
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#who")).to_have_text(username)
    expect(page.locator("#console")).to_be_visible()

    start = (datetime.now() + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    page.select_option("#provider", str(provider))
    page.fill("#location", "Main Street")
    page.fill("#start", start.strftime("%Y-%m-%dT%H:%M"))
    page.click("#offer")
    slots = page.locator("#slots")
    expect(slots).to_contain_text("pending", timeout=15_000)
    expect(
        slots.locator("tr", has_text="Main Street").first.locator(".state.pending")
    ).to_have_count(3)
    page.screenshot(path=str(SHOTS / "slots.png"), full_page=True)

    # the slot exists once, and the audit trail names the user who entered it
    rows = clinic.sql(
        "SELECT c.id, e.actor_ref FROM cancellations c JOIN audit_events e"
        " ON e.cancellation_id = c.id AND e.kind = 'cancellation_created' WHERE c.provider_id = %s",
        (provider,),
    )
    assert [actor for _, actor in rows] == [username]

    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    page.reload()
    expect(page.locator("#login")).to_be_visible()  # the session is gone, not just hidden
