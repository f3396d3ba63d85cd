"""`make demo`: a scripted scenario, narrated, against a running `make run` with the simulator.

Staff cancel a slot; three offers go out; one patient defers to next week, one says yes, the third
hears the slot is filled.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

import httpx

from launcher.stack import compose_env


def say(text: str) -> None:
    print(text, flush=True)


def main() -> int:
    env = compose_env()
    staff = httpx.Client(
        base_url=env["BACKEND_URL"],
        timeout=30,
        headers={"Authorization": f"Bearer {env['STAFF_API_TOKEN']}"},
    )
    phone = httpx.Client(base_url=f"http://127.0.0.1:{env['SIMULATOR_PORT']}", timeout=60)
    try:
        providers = staff.get("/api/v1/providers").raise_for_status().json()["items"]
        phone.get("/simulator/messages").raise_for_status()
    except httpx.HTTPError:
        say("Start the product first (`make run` in another terminal, without Twilio credentials).")
        return 1

    def texts_to(number: str) -> list[str]:
        messages = phone.get("/simulator/messages", params={"to": number}).json()
        return [m["body"] for m in messages if m["direction"].startswith("outbound")]

    def wait_for_text(number: str, count: int) -> str:
        for _ in range(120):
            texts = texts_to(number)
            if len(texts) >= count:
                return texts[count - 1]
            time.sleep(0.5)
        raise SystemExit(f"no text reached {number} in time; see .data/logs/")

    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    say(
        f"Front desk: a patient cancelled; {providers[0]['name']}'s slot on "
        f"{start:%a %d %b %H:%M} UTC is open."
    )
    cancellation = (
        staff.post(
            "/api/v1/cancellations",
            json={
                "provider_id": providers[0]["id"],
                "location": "Main Street Clinic",
                "slot_start": start.isoformat(),
                "slot_end": (start + timedelta(minutes=30)).isoformat(),
            },
        )
        .raise_for_status()
        .json()
    )
    offers = cancellation["offers"]
    if len(offers) < 3:
        say(
            "Fewer than three patients are eligible right now (contact hours, caps or an earlier "
            "demo). Try again with a fresh database (remove .data/) during contact hours."
        )
        return 1
    numbers = [staff.get(f"/api/v1/patients/{o['patient_id']}").json()["phone"] for o in offers]
    say("The backend picks the three best-matching patients and texts them:")
    for number in numbers:
        say(f"  to {number}: {wait_for_text(number, 1)}")

    def patient_says(number: str, text: str) -> None:
        count = len(texts_to(number))
        say(f"\n{number} replies: {text}")
        phone.post("/simulator/inbound", json={"from": number, "body": text}).raise_for_status()
        say(f"  assistant: {wait_for_text(number, count + 1)}")

    patient_says(numbers[0], "can't make it, try me next week")
    patient_says(numbers[1], "yes!")
    say(f"\n{numbers[2]} receives: {wait_for_text(numbers[2], 2)}")
    view = staff.get(f"/api/v1/cancellations/{cancellation['id']}").json()
    say(
        f"\nStaff see: slot {view['status']}, filled by patient {view['filled_by_patient_id']}; "
        "offers: " + ", ".join(f"{o['patient_id']}={o['state']}" for o in view["offers"])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
