"""The staff console in a real Chromium (Debian's, driven by Playwright): log in, add a patient,
edit her preferences, boost and remove her on her page, enter a slot, watch its three seats count
down on the board, a patient's "yes" moves it to the booked queue, acknowledge it, read the
winner's page (offer and texts), close a call-back, re-enable texts after a wrong number, read the
numbers and charts, log out. Screenshots in results/console/."""

from __future__ import annotations

import shutil
import time
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


def wait_until(page: Page, expression: str, expected: object, timeout: float = 10) -> None:
    """Poll an expression from outside the page: the console's content security policy forbids
    the string evaluation Playwright's wait_for_function does inside it."""
    deadline = time.monotonic() + timeout
    while (value := page.evaluate(expression)) != expected:
        assert time.monotonic() < deadline, f"{expression} is {value!r}, not {expected!r}"
        page.wait_for_timeout(200)


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

    # her page: the entry's score moves with "urgent" and a boost; then she leaves the list
    page.locator("#found tr", has_text=phone).get_by_role("button", name="Open").click()
    expect(page.locator("#pt-name")).to_contain_text("Rosa")
    entry = page.locator("#pt-entries .entry").first
    expect(entry.locator(".score")).to_have_text("0")
    entry.locator("input[name=day][value=mon]").check()
    entry.locator("input[name=day][value=wed]").check()
    entry.locator("input[name=earliest_time]").fill("09:00")
    entry.locator("input[name=urgent]").check()
    entry.get_by_role("button", name="Save preferences").click()
    expect(entry.locator(".score")).to_have_text("30")  # the urgent points
    entry.locator("input[name=boost]").fill("10")
    entry.get_by_role("button", name="Set boost").click()
    expect(entry.locator(".score")).to_have_text("40")
    [(days, earliest, urgent, boost)] = clinic.sql(
        "SELECT w.days_of_week, w.earliest_time::text, w.urgent, w.manual_boost"
        " FROM waitlist_entries w JOIN patients p ON p.id = w.patient_id WHERE p.phone = %s",
        (phone,),
    )
    assert (days, earliest, urgent, boost) == ([0, 2], "09:00:00", True, 10)
    page.screenshot(path=str(SHOTS / "patient-edit.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    entry.get_by_role("button", name="Remove from waitlist").click()
    expect(page.locator("#pt-entries")).to_contain_text("removed")
    [(entry_status,)] = clinic.sql(
        "SELECT w.status FROM waitlist_entries w JOIN patients p ON p.id = w.patient_id"
        " WHERE p.phone = %s",
        (phone,),
    )
    assert entry_status == "removed"
    page.click("#pt-close")

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
    expect(slot.locator(".next").first).to_have_text("next seat refills from 1 eligible patient")
    # and why the batch had its size
    expect(slot.locator(".next.batch")).to_contain_text("3 at a time, 7-minute holds")
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

    # the winner's page: the accepted offer, and the conversation from the tracker store
    page.fill("#find", winner[-4:])
    page.press("#find", "Enter")
    page.locator("#found tr", has_text=winner).get_by_role("button", name="Open").click()
    expect(page.locator("#pt-offers .state.accepted")).to_have_count(1)
    expect(page.locator("#pt-transcript .text.in").first).to_contain_text("yes")
    outgoing = page.locator("#pt-transcript .text.out")
    expect(outgoing.first).to_contain_text(clinic.received(winner)[0][:20])
    assert outgoing.count() >= 2  # the offer and the confirmation
    page.screenshot(path=str(SHOTS / "patient.png"), full_page=True)
    page.click("#pt-close")

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

    # a number that reached the wrong person: nothing is texted to it until staff correct it
    stranger = next(phone for pid, phone in patients if pid in offered and phone != winner)
    clinic.text(stranger, "you have the wrong number")
    expect(page.locator("#callbacks tr", has_text=stranger)).to_have_count(1, timeout=30_000)
    page.fill("#find", stranger[-4:])
    page.press("#find", "Enter")
    page.locator("#found tr", has_text=stranger).get_by_role("button", name="Open").click()
    expect(page.locator("#pt-summary")).to_contain_text("wrong number")
    corrected = f"+1303556{datetime.now().microsecond % 10000:04d}"
    page.fill("#pt-phone", corrected)
    page.click("#pt-renumber-button")
    expect(page.locator("#pt-summary")).to_contain_text(corrected)
    expect(page.locator("#pt-renumber")).to_be_hidden()
    [(wrong_at, opted_out)] = clinic.sql(
        "SELECT wrong_number_at, opted_out FROM patients WHERE phone = %s", (corrected,)
    )
    assert (wrong_at, opted_out) == (None, False)
    corrected_by = clinic.sql(
        "SELECT actor_ref FROM audit_events WHERE kind = 'patient_number_corrected'"
        " ORDER BY id DESC LIMIT 1"
    )
    assert corrected_by == [(username,)]
    page.click("#pt-close")

    # the numbers, and their charts drawn by the vendored Chart.js, for 7 then 30 days
    stats = page.locator("#stats")
    expect(stats).to_contain_text("Fill rate")
    filled = stats.locator("tr", has_text="Filled").locator(".stat").text_content()
    assert filled is not None and int(filled) >= 1
    assert page.evaluate("typeof Chart") == "function"
    days_charted = "Chart.getChart('chart-fill').data.labels.length"
    wait_until(page, days_charted, 7)
    filled_charted = "Chart.getChart('chart-time').data.datasets[0].data.reduce((a, b) => a + b, 0)"
    assert page.evaluate(filled_charted) == int(filled)
    page.select_option("#range", "30")
    wait_until(page, days_charted, 30)
    page.locator("#stats").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "stats.png"), full_page=True)

    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    page.reload()
    expect(page.locator("#login")).to_be_visible()  # the session is gone, not just hidden
