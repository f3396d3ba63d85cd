"""`make review` against a real tracker store: what each section lists, and that no phone leaks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from scripts import review_conversations as rc
from tests.review.tracker_rows import Tracker

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
LOW = "+12025550101"  # an unsure yes, confirmed
FALLBACK = "+12025550102"  # a question NLU missed, asked again too late to count as a rephrasing
CONTRARY = "+12025550103"  # a confident yes, then a no
REPHRASED = "+12025550104"  # a fallback, rephrased right after utter_clarify
RETRACTED = "+12025550105"  # YES!! then "no wait"
NEW_OFFER = "+12025550106"  # no, then a new offer, then yes: not a contradiction
OLD = "+12025550107"  # eight days ago: outside the window
RETRIED = "+12025550108"  # a turn stored twice (same MessageSid), then a phone number in a text
UNSURE_THEN_NO = "+12025550109"  # an unsure yes, then no when asked to confirm
PHONES = (LOW, FALLBACK, CONTRARY, REPHRASED, RETRACTED, NEW_OFFER, OLD, RETRIED, UNSURE_THEN_NO)
TYPED_NUMBER = "202-555-0199"


def at(hours: float = 0, minutes: float = 0, days: float = 0) -> datetime:
    """A moment before NOW."""
    return NOW - timedelta(days=days, hours=hours, minutes=minutes)


def conversations() -> Tracker:
    t = Tracker()
    t.offer(LOW, at(hours=2))
    t.text(LOW, at(hours=2, minutes=-2), "ok i guess that could work", "accept", 0.64)
    t.answer(LOW, at(hours=2, minutes=-2), "action_accept", ["utter_confirm_accept"])
    t.text(LOW, at(hours=2, minutes=-3), "yes", "accept", 0.99)
    t.answer(LOW, at(hours=2, minutes=-3), "action_accept", ["utter_claimed"])

    t.offer(FALLBACK, at(days=1, hours=2))
    t.text(
        FALLBACK,
        at(days=1, hours=2, minutes=-5),
        "wat is this abt",
        "nlu_fallback",
        0.5,
        ranking=[("nlu_fallback", 0.5), ("offer_details", 0.41), ("out_of_scope", 0.3)],
    )
    t.answer(FALLBACK, at(days=1, hours=2, minutes=-5), "utter_clarify", ["utter_clarify"])
    t.text(
        FALLBACK, at(days=1, hours=2, minutes=-25), "what time is the appt", "offer_details", 0.95
    )
    t.answer(
        FALLBACK, at(days=1, hours=2, minutes=-25), "action_offer_details", ["utter_offer_details"]
    )

    t.offer(CONTRARY, at(hours=3))
    t.text(CONTRARY, at(hours=3, minutes=-1), "sure thing", "accept", 0.91)
    t.answer(CONTRARY, at(hours=3, minutes=-1), "action_accept", ["utter_claimed"])
    t.text(CONTRARY, at(hours=3, minutes=-5), "sorry no I cant make it", "decline", 0.97)
    t.answer(CONTRARY, at(hours=3, minutes=-5), "action_decline", ["utter_declined"])

    t.offer(REPHRASED, at(hours=5))
    t.text(
        REPHRASED,
        at(hours=5, minutes=-10),
        "can i come l8r in the day",
        "nlu_fallback",
        0.5,
        ranking=[("nlu_fallback", 0.5), ("counter_proposal", 0.45), ("defer", 0.4)],
    )
    t.answer(REPHRASED, at(hours=5, minutes=-10), "utter_clarify", ["utter_clarify"])
    t.text(
        REPHRASED,
        at(hours=5, minutes=-11),
        "can I have a later time instead",
        "counter_proposal",
        0.93,
    )
    t.answer(
        REPHRASED,
        at(hours=5, minutes=-11),
        "action_counter_proposal",
        ["utter_counter_proposal_noted"],
    )

    t.offer(RETRACTED, at(minutes=30))
    t.text(RETRACTED, at(minutes=29), "YES!!", "accept", 0.98)
    t.answer(RETRACTED, at(minutes=29), "action_accept", ["utter_claimed"])
    t.text(RETRACTED, at(minutes=27), "no wait", "out_of_scope", 0.72)
    t.answer(RETRACTED, at(minutes=27), "utter_clarify", ["utter_clarify"])

    t.offer(NEW_OFFER, at(hours=6))
    t.text(NEW_OFFER, at(hours=6, minutes=-2), "no thanks", "decline", 0.96)
    t.answer(NEW_OFFER, at(hours=6, minutes=-2), "action_decline", ["utter_declined"])
    t.offer(NEW_OFFER, at(hours=6, minutes=-5))
    t.text(NEW_OFFER, at(hours=6, minutes=-6), "yes please", "accept", 0.97)
    t.answer(NEW_OFFER, at(hours=6, minutes=-6), "action_accept", ["utter_claimed"])

    t.offer(OLD, at(days=8))
    t.text(OLD, at(days=8, minutes=-1), "maybe??", "nlu_fallback", 0.5)
    t.answer(OLD, at(days=8, minutes=-1), "utter_clarify", ["utter_clarify"])

    # no offer: a text out of the blue, stored, then its action died (action server down); the
    # connector ran the turn again 15 s later under the same MessageSid
    retried_sid = "SM" + "7" * 32
    t.text(RETRIED, at(hours=4), "Yes but whats the address", "accept", 0.7, sid=retried_sid)
    retry = at(hours=4, minutes=-0.25)
    t.text(RETRIED, retry, "Yes but whats the address", "accept", 0.7, sid=retried_sid)
    t.answer(RETRIED, retry, "action_accept", ["utter_confirm_accept"])
    t.text(
        RETRIED, at(hours=4, minutes=-20), f"call me at {TYPED_NUMBER} pls", "talk_to_person", 0.85
    )
    t.answer(RETRIED, at(hours=4, minutes=-20), "action_default_fallback", ["utter_default"])

    t.offer(UNSURE_THEN_NO, at(minutes=90))
    t.text(UNSURE_THEN_NO, at(minutes=89), "i think so?? maybe", "accept", 0.58)
    t.answer(UNSURE_THEN_NO, at(minutes=89), "action_accept", ["utter_confirm_accept"])
    t.text(UNSURE_THEN_NO, at(minutes=88), "no not really", "decline", 0.88)
    t.answer(UNSURE_THEN_NO, at(minutes=88), "action_decline", ["utter_declined"])
    return t


@pytest.fixture
def store(tracker_db: str) -> str:
    conversations().save(tracker_db)
    return tracker_db


def report(url: str, known: dict[str, str] | None = None, **kwargs: object) -> str:
    with psycopg.connect(url) as conn:
        result = rc.load_review(conn, NOW, **kwargs)  # type: ignore[arg-type]
    return rc.render_markdown(result, known or {})


def section(markdown: str, title_start: str) -> list[str]:
    """The lines of one `## ` section, without blank lines."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"## {title_start}"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [line for line in lines[start + 1 : end] if line]


def test_header_counts_inbound_texts_of_the_window_only(store: str) -> None:
    markdown = report(store)
    assert markdown.splitlines()[:5] == [
        "# Patient texts to review",
        "",
        "Inbound texts from 2026-11-19T15:00:00Z to 2026-11-26T15:00:00Z: 16.",
        "Phones are masked; the texts are patients' own words: keep this file inside the clinic.",
        "Each text is listed once, newest first.",
    ]
    assert "maybe??" not in markdown  # eight days old
    assert "EXTERNAL" not in markdown  # offers are the backend's, not the patient's


def test_low_confidence_section(store: str) -> None:
    assert section(report(store), "1.") == [
        "Texts: 2.",
        "| time (UTC) | phone | message | intent | next action |",
        "| --- | --- | --- | --- | --- |",
        "| 2026-11-26T13:02:00Z | +1******0101 | ok i guess that could work | accept 0.64 "
        "| action_accept → utter_confirm_accept |",
        # stored twice by a retried turn, listed once: the run whose answer the patient got
        "| 2026-11-26T11:00:15Z | +1******0108 | Yes but whats the address | accept 0.70 "
        "| action_accept → utter_confirm_accept |",
    ]


def test_fallback_section(store: str) -> None:
    assert section(report(store), "2.") == [
        "Texts: 3.",
        "| time (UTC) | phone | message | intent | next action |",
        "| --- | --- | --- | --- | --- |",
        "| 2026-11-26T14:33:00Z | +1******0105 | no wait | out_of_scope 0.72 | utter_clarify |",
        "| 2026-11-26T11:20:00Z | +1******0108 | call me at 2*****0199 pls | talk_to_person 0.85 "
        "| action_default_fallback → utter_default |",
        # asked again 20 minutes later: too late to count as a rephrasing
        "| 2026-11-25T13:05:00Z | +1******0102 | wat is this abt "
        "| nlu_fallback 0.50 (best: offer_details 0.41) | utter_clarify |",
    ]


def test_differed_section(store: str) -> None:
    header = "| time (UTC) | phone | message | intent | next action | then | suggested intent |"
    assert section(report(store), "3.") == [
        "An accept or decline contradicted within 10 minutes, or a text the patient rephrased "
        "after utter_clarify.",
        "Texts: 4.",
        header,
        "| --- | --- | --- | --- | --- | --- | --- |",
        "| 2026-11-26T14:31:00Z | +1******0105 | YES!! | accept 0.98 | action_accept → utter_claimed "
        "| no wait (out_of_scope 0.72, 2 min later) | decline (or a change of mind) |",
        "| 2026-11-26T13:31:00Z | +1******0109 | i think so?? maybe | accept 0.58 "
        "| action_accept → utter_confirm_accept | no not really (decline 0.88, 1 min later) "
        "| decline |",
        "| 2026-11-26T12:01:00Z | +1******0103 | sure thing | accept 0.91 "
        "| action_accept → utter_claimed | sorry no I cant make it (decline 0.97, 4 min later) "
        "| decline (or a change of mind) |",
        "| 2026-11-26T10:10:00Z | +1******0104 | can i come l8r in the day "
        "| nlu_fallback 0.50 (best: counter_proposal 0.45) | utter_clarify "
        "| can I have a later time instead (counter_proposal 0.93, 1 min later) "
        "| counter_proposal |",
    ]


def test_yaml_block_is_rasa_nlu_with_placeholders_and_suggestions(store: str) -> None:
    markdown = report(store)
    block = markdown.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert block.splitlines() == [
        'version: "3.1"',
        "nlu:",
        "- intent: TODO_intent",
        "  examples: |",
        "    - no wait",
        "    - call me at 2*****0199 pls",
        "    - wat is this abt",
        "    - ok i guess that could work",
        "    - Yes but whats the address",
        "- intent: counter_proposal",
        "  examples: |",
        "    - can i come l8r in the day",
        "- intent: decline",
        "  examples: |",
        "    - i think so?? maybe",
        # a confident yes the patient took back is most likely a change of mind: left to decide
        "# NLU was sure of these and the patient then said the opposite: a change of mind,",
        "# or a misreading? Uncomment only the misreadings.",
        "# - intent: decline",
        "#   examples: |",
        "#     - YES!!",
        "#     - sure thing",
    ]
    yaml = pytest.importorskip("yaml")
    parsed = yaml.safe_load(block)
    assert parsed["version"] == "3.1"
    assert [item["intent"] for item in parsed["nlu"]] == [
        "TODO_intent",
        "counter_proposal",
        "decline",
    ]


def test_examples_already_in_data_or_held_out_are_left_out_of_the_yaml(
    store: str, tmp_path: Path
) -> None:
    (tmp_path / "data" / "nlu").mkdir(parents=True)
    (tmp_path / "tests" / "nlu").mkdir(parents=True)
    (tmp_path / "data" / "nlu" / "offer_replies.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: offer_details\n    examples: |\n'
        "      - Wat is this ABT\n      - when is it [tomorrow](time_expression)\n"
    )
    (tmp_path / "tests" / "nlu" / "heldout.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: accept\n  metadata:\n    language: en\n'
        "  examples: |\n    - ok I guess that  could work\n"
    )
    known = rc.known_examples(tmp_path)
    assert known == {
        "wat is this abt": "data/nlu",
        "when is it tomorrow": "data/nlu",
        "ok i guess that could work": "tests/nlu",
    }
    block = report(store, known).split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "wat is this abt" not in block
    assert "ok i guess that could work" not in block
    assert block.splitlines()[-2:] == [
        "# Left out, already in data/nlu/: 1.",
        "# Left out, in the held-out test set tests/nlu/ (never copy it into data/): 1.",
    ]


def test_no_full_phone_anywhere(store: str) -> None:
    markdown = report(store)
    for phone in (*PHONES, TYPED_NUMBER):
        digits = re.sub(r"\D", "", phone)
        assert phone not in markdown
        assert digits not in markdown
        assert digits[-10:] not in markdown  # the number without its country code


def test_threshold_and_limit(store: str) -> None:
    # at 0.60 the 0.64 and 0.70 yeses are no longer unsure; only the newest of each is shown
    markdown = report(store, threshold=0.60, limit=1)
    assert section(markdown, "1.") == ["Texts: 0.", "None."]
    assert section(markdown, "2.")[0] == "Texts: 1 newest of 3."
    assert len(section(markdown, "2.")) == 4
    assert section(markdown, "3.")[-1].endswith("| decline (or a change of mind) |")


def test_window_in_days(store: str) -> None:
    assert "Inbound texts from 2026-11-25T15:00:00Z to 2026-11-26T15:00:00Z: 14." in report(
        store, days=1
    )
    # nine days back reaches the old conversation
    assert "| maybe?? | nlu_fallback 0.50 | utter_clarify |" in report(store, days=9)


def test_numbers_typed_in_texts_are_masked() -> None:
    assert rc.mask_numbers("call (202) 555-0123 or +1 202 555 0124") == (
        "call 2*****0123 or +1******0124"
    )
    assert rc.mask_numbers("202/555/0125") == "2*****0125"
    # times and dates written the usual way are no phone numbers
    assert rc.mask_numbers("after 3-4pm on 11/28, 9 or 10") == "after 3-4pm on 11/28, 9 or 10"


def test_table_cells_stay_on_one_line() -> None:
    assert rc.cell("yes | no\nmaybe") == "yes \\| no maybe"


def test_database_url_and_threshold_settings(tmp_path: Path) -> None:
    assert rc.database_url({"DATABASE_URL": "postgres://u@h/db"}, tmp_path) == "postgres://u@h/db"
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"):
        assert rc.psycopg_conninfo(url) == "postgresql://u@h/db"
    with pytest.raises(SystemExit, match="make run"):
        rc.database_url({}, tmp_path)  # no .data/postgres: nothing to start
    assert rc.confirm_threshold({}) == 0.80
    assert rc.confirm_threshold({"ACCEPT_CONFIRM_THRESHOLD": "0.9"}) == 0.9
    with pytest.raises(SystemExit):
        rc.confirm_threshold({"ACCEPT_CONFIRM_THRESHOLD": "high"})


def test_main_writes_the_report(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results" / "review.md"
    env = {"DATABASE_URL": store.replace("postgresql://", "postgresql+psycopg://", 1)}
    assert rc.main(["--days", "7", "--out", str(out)], env=env, now=NOW) == 0
    written = out.read_text()
    assert "| 2026-11-26T14:33:00Z | +1******0105 | no wait |" in written
    assert '```yaml\nversion: "3.1"\nnlu:\n' in written
    captured = capsys.readouterr()
    assert captured.out == ""
    for phone in PHONES:
        assert phone not in written and phone not in captured.err


def test_main_without_a_tracker_store(tracker_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(tracker_db, autocommit=True) as conn:
        conn.execute("DROP TABLE events")
    assert rc.main([], env={"DATABASE_URL": tracker_db}, now=NOW) == 1
    assert "No conversations stored yet" in capsys.readouterr().err
