"""Basic auth, listing, paging, deleting and redacting, as Twilio's Messages API does."""

from __future__ import annotations

import httpx
import pytest
from sms_simulator_testkit import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CLINIC_NUMBER,
    OTHER_PATIENT,
    PATIENT,
    RunningSimulator,
    auth,
    send,
)


@pytest.mark.parametrize(
    "credentials",
    [None, (ACCOUNT_SID, "wrong-token"), ("AC" + "0" * 32, AUTH_TOKEN), (ACCOUNT_SID, "")],
)
def test_create_needs_basic_auth(
    simulator: RunningSimulator, credentials: tuple[str, str] | None
) -> None:
    answer = httpx.post(
        simulator.api("/Messages.json"),
        data={"To": PATIENT, "From": CLINIC_NUMBER, "Body": "hi"},
        auth=credentials,
    )
    assert answer.status_code == 401
    assert answer.json()["code"] == 20003
    assert answer.headers["www-authenticate"].startswith("Basic")
    assert httpx.get(simulator.url + "/simulator/messages").json() == []


def test_malformed_authorization_header_is_401(simulator: RunningSimulator) -> None:
    answer = httpx.get(simulator.api("/Messages.json"), headers={"Authorization": "Basic %%%"})
    assert answer.status_code == 401


def test_read_endpoints_need_auth(simulator: RunningSimulator) -> None:
    sid = send(simulator).json()["sid"]
    assert httpx.get(simulator.api(f"/Messages/{sid}.json")).status_code == 401
    assert httpx.get(simulator.api("/Messages.json")).status_code == 401


def test_another_accounts_path_is_404(simulator: RunningSimulator) -> None:
    other = f"{simulator.url}/2010-04-01/Accounts/AC{'9' * 32}/Messages.json"
    answer = httpx.post(
        other, data={"To": PATIENT, "From": CLINIC_NUMBER, "Body": "hi"}, auth=auth()
    )
    assert answer.status_code == 404
    assert answer.json()["code"] == 20404


def test_list_filters_and_pages_newest_first(simulator: RunningSimulator) -> None:
    sids = [send(simulator, Body=f"text {index}").json()["sid"] for index in range(3)]
    other = send(simulator, To=OTHER_PATIENT).json()["sid"]

    listed = httpx.get(simulator.api("/Messages.json"), params={"To": PATIENT}, auth=auth()).json()
    assert [message["sid"] for message in listed["messages"]] == list(reversed(sids))

    first = httpx.get(simulator.api("/Messages.json"), params={"PageSize": 2}, auth=auth()).json()
    assert [message["sid"] for message in first["messages"]] == [other, sids[2]]
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 2, 0, 1)
    assert first["previous_page_uri"] is None
    second = httpx.get(simulator.url + first["next_page_uri"], auth=auth()).json()
    assert [message["sid"] for message in second["messages"]] == [sids[1], sids[0]]
    assert second["next_page_uri"] is None
    assert second["previous_page_uri"] is not None

    by_sender = httpx.get(
        simulator.api("/Messages.json"), params={"From": "+15550000000"}, auth=auth()
    ).json()
    assert by_sender["messages"] == []


def test_delete_and_redact(simulator: RunningSimulator) -> None:
    sid = send(simulator).json()["sid"]
    redacted = httpx.post(simulator.api(f"/Messages/{sid}.json"), data={"Body": ""}, auth=auth())
    assert redacted.status_code == 200
    assert redacted.json()["body"] == ""
    assert (
        httpx.post(
            simulator.api(f"/Messages/{sid}.json"), data={"Body": "new"}, auth=auth()
        ).status_code
        == 400
    )

    assert httpx.delete(simulator.api(f"/Messages/{sid}.json"), auth=auth()).status_code == 204
    assert httpx.get(simulator.api(f"/Messages/{sid}.json"), auth=auth()).status_code == 404


def test_simulator_messages_filter_by_to_and_from(simulator: RunningSimulator) -> None:
    send(simulator, Body="for patient")
    send(simulator, To=OTHER_PATIENT, Body="for someone else")
    # An unencoded "+" in a query string arrives as a space; both spellings work.
    for query in (f"?to={PATIENT}", "?to=%2B15551234567"):
        messages = httpx.get(simulator.url + "/simulator/messages" + query).json()
        assert [message["body"] for message in messages] == ["for patient"]
    from_clinic = httpx.get(
        simulator.url + "/simulator/messages", params={"from": CLINIC_NUMBER}
    ).json()
    assert len(from_clinic) == 2
    assert httpx.get(simulator.url + "/simulator/numbers").json() == [OTHER_PATIENT, PATIENT]


def test_phone_page_is_served(simulator: RunningSimulator) -> None:
    page = httpx.get(simulator.url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/simulator/inbound" in page.text and "/simulator/messages" in page.text
    # Bodies are untrusted: the page must render them as text.
    assert "textContent" in page.text and "innerHTML" not in page.text
