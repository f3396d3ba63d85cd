"""The staff console in a real Chromium (Debian's, driven by Playwright): log in, enter a slot,
watch its three seats count down on the board, a patient's "yes" moves it to the booked queue,
acknowledge it, close a call-back, read the week's numbers, log out. Screenshots in results/console/."""

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
    # a browser in another time zone than the clinic: times must still be the clinic's
    context = browser.new_context(
        viewport={"width": 1300, "height": 1000}, timezone_id="Europe/Madrid"
    )
    yield context.new_page()
    context.close()


def test_a_front_desk_shift(clinic: Clinic, page: Page) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    username = f"desk{datetime.now().strftime('%H%M%S%f')}"
    clinic.api("POST", "/users", json={"username": username, "password": PASSWORD})
    provider = clinic.provider()
    patients = [clinic.patient() for _ in range(4)]

    page.goto(clinic.env["BACKEND_URL"] + "/")
    expect(page.locator("#login")).to_be_visible()
    page.screenshot(path=str(SHOTS / "login.png"))
    page.fill("#username", username)
    page.fill("#password", "not the password")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("wrong username or password")
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#who")).to_have_text(username)
    expect(page.locator("#console")).to_be_visible()

    # add a patient and their waitlist entry in one form
    phone = f"+1303555{datetime.now().microsecond % 10000:04d}"  # not one of the suite's numbers
    page.fill("#p-name", "Rosa")
    page.fill("#p-phone", phone)
    page.select_option("#p-language", "es")
    page.fill("#p-type", "derm")
    page.click("#p-add")
    expect(page.locator("#p-result")).to_contain_text("Rosa is on the waitlist")
    [(language, entry_status)] = clinic.sql(
        "SELECT p.preferred_language, w.status FROM patients p"
        " JOIN waitlist_entries w ON w.patient_id = p.id WHERE p.phone = %s",
        (phone,),
    )
    assert (language, entry_status) == ("es", "active")
    page.fill("#find", "ros")
    page.press("#find", "Enter")
    expect(page.locator("#found")).to_contain_text(phone)

    # enter a slot, in the clinic's time zone whatever the browser's: three seats appear on the
    # board, their texts leave, their holds count down
    start = (datetime.now() + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    expect(page.locator("#zone")).to_have_text("America/New_York")
    page.select_option("#provider", str(provider))
    page.fill("#location", "Main Street")
    page.fill("#start", start.strftime("%Y-%m-%dT%H:%M"))
    page.click("#offer")
    slot = page.locator("#board .slot", has_text="Main Street").first
    expect(slot.locator(".state.pending")).to_have_count(3, timeout=15_000)
    expect(slot.locator(".countdown")).to_have_count(3, timeout=30_000)
    first = slot.locator(".countdown").first.text_content()
    page.wait_for_timeout(2_000)
    assert slot.locator(".countdown").first.text_content() != first  # it ticks
    expect(slot.locator(".next")).to_have_text("next seat refills from 2 eligible patients")
    page.screenshot(path=str(SHOTS / "board.png"), full_page=True)
    [(cancellation_id, actor)] = clinic.sql(
        "SELECT c.id, e.actor_ref FROM cancellations c JOIN audit_events e"
        " ON e.cancellation_id = c.id AND e.kind = 'cancellation_created' WHERE c.provider_id = %s",
        (provider,),
    )
    assert actor == username  # the audit trail names who entered it
    [(local_start,)] = clinic.sql(
        "SELECT slot_start AT TIME ZONE 'America/New_York' FROM cancellations WHERE id = %s",
        (cancellation_id,),
    )
    assert local_start == start  # 10:00 in the clinic, not in the browser's zone

    # a patient says yes: the slot leaves the board and waits in "booked" until entered
    offered = clinic.offers(cancellation_id)
    winner = next(phone for pid, phone in patients if pid in offered)
    clinic.wait_for_texts(winner, 1)
    clinic.text(winner, "yes")
    booked = page.locator("#booked tr", has_text=winner)
    expect(booked).to_have_count(1, timeout=30_000)
    expect(page.locator("#board .slot", has_text="Main Street")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "booked.png"), full_page=True)
    booked.get_by_role("button", name="Entered").click()
    expect(booked).to_have_count(0)
    [(entered_by,)] = clinic.sql(
        "SELECT schedule_entered_by FROM cancellations WHERE id = %s", (cancellation_id,)
    )
    assert entered_by == username

    # a patient asks for a call: it shows with their words; "done" takes a note and closes it
    caller = next(phone for pid, phone in patients if pid not in offered)
    clinic.text(caller, "can someone from the clinic call me please")
    call_back = page.locator("#callbacks tr", has_text=caller)
    expect(call_back).to_contain_text("can someone from the clinic call me please", timeout=30_000)
    page.screenshot(path=str(SHOTS / "callbacks.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.accept("left a voicemail"))
    call_back.get_by_role("button", name="Done").click()
    expect(call_back).to_have_count(0)
    notes = clinic.sql("SELECT done_by, note FROM callbacks_done")
    assert (username, "left a voicemail") in notes

    # the week's numbers
    stats = page.locator("#stats")
    expect(stats).to_contain_text("Fill rate")
    filled = stats.locator("tr", has_text="Filled").locator(".stat").text_content()
    assert filled is not None and int(filled) >= 1
    page.screenshot(path=str(SHOTS / "stats.png"), full_page=True)

    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    page.reload()
    expect(page.locator("#login")).to_be_visible()  # the session is gone, not just hidden
