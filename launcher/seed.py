"""A demo clinic for a fresh database: two providers and twenty waitlisted patients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

FIRST_NAMES = [
    "Ana",
    "Ben",
    "Carla",
    "Dev",
    "Elena",
    "Femi",
    "Grace",
    "Hugo",
    "Ines",
    "Jon",
    "Kara",
    "Luis",
    "Mia",
    "Noah",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
]


def demo_phone(n: int) -> str:
    # 202-555-01xx numbers are reserved for fiction, so the demo never texts a real person
    return f"+120255501{n:02d}"


def seed_if_empty(backend_url: str, staff_token: str) -> bool:
    headers = {"Authorization": f"Bearer {staff_token}"}
    with httpx.Client(base_url=backend_url, headers=headers, timeout=10) as client:
        if client.get("/api/v1/providers?limit=1").json()["total"]:
            return False
        lee = client.post(
            "/api/v1/providers", json={"name": "Dr. Lee", "provider_type": "dermatology"}
        ).json()
        client.post("/api/v1/providers", json={"name": "Dr. Ortiz", "provider_type": "dermatology"})
        now = datetime.now(UTC)
        for n, name in enumerate(FIRST_NAMES, start=1):
            patient = client.post(
                "/api/v1/patients",
                json={
                    "phone": demo_phone(n),
                    "display_name": name,
                    "preferred_language": "es" if n % 5 == 0 else "en",
                },
            ).json()
            entry: dict[str, object] = {"patient_id": patient["id"], "provider_type": "dermatology"}
            if n % 4 == 0:
                entry["current_appointment_at"] = (now + timedelta(days=30 * n)).isoformat()
            if n in (3, 11):
                entry["urgent"] = True
            if n == 7:
                entry["provider_ids"] = [lee["id"]]
            client.post("/api/v1/waitlist", json=entry).raise_for_status()
        return True
