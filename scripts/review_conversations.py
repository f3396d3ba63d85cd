"""`make review`: the patients' texts a conversation designer should read, from Rasa's tracker store.

Reads the `events` table Rasa's SQLTrackerStore writes (one row per event, the event as JSON in
`data`) and lists the last DAYS days of inbound texts in three sections:

1. low confidence: the top intent's confidence was below ACCEPT_CONFIRM_THRESHOLD (0.80);
2. fallback: the next action was `action_default_fallback` or `utter_clarify`, or the intent was
   `nlu_fallback`;
3. intent differed from what the patient then did: an accept or decline contradicted within
   10 minutes, or a text the patient rephrased after `utter_clarify`.

Each text is listed once, in the most telling section (3, else 2, else 1), because a fallback is
also low-confidence and a rephrased text is also a fallback. The report ends with a YAML block in
Rasa's NLU format, ready to paste into data/nlu/.

Phones are always masked, in the conversation id and inside the texts. The texts themselves are
printed: reading them is the point of the tool, so the output must stay inside the clinic.

Run from the project root with the backend venv:
    .venv-backend/bin/python -m scripts.review_conversations [--days 7] [--limit 200] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from sms_common.phones import mask_phone

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DAYS = 7
DEFAULT_LIMIT = 200
# The claim threshold of actions/offer_replies.py: below it an accept is only a guess.
DEFAULT_THRESHOLD = 0.80
# How long after an accept or decline a contrary text still counts as "what the patient then did".
FOLLOW_UP_WINDOW = timedelta(minutes=10)

FALLBACK_ACTIONS = frozenset({"action_default_fallback", "utter_clarify"})
FALLBACK_INTENT = "nlu_fallback"
CLARIFY_ACTION = "utter_clarify"
# Actions that are not the bot's answer to a text: waiting for the next one, or bookkeeping.
NOT_AN_ANSWER = frozenset(
    {"action_listen", "action_unlikely_intent", "action_session_start", "action_extract_slots"}
)
# An accept undone by a no (or a "wait, I'll tell you when"), a decline undone by a yes.
CONTRADICTIONS: Mapping[str, frozenset[str]] = {
    "accept": frozenset({"decline", "defer"}),
    "decline": frozenset({"accept"}),
}
# A yes taken back in so many words; the classifier may call these anything (out_of_scope, say).
RETRACTION = re.compile(
    r"\b(no\W*wait|wait\W*no|actually\W*no|never\W*mind|nevermind|changed my mind|cancel that"
    r"|no\W*espera|espera\W*no|mejor no)\b",
    re.IGNORECASE,
)
# A clarify answered with one of these is not a rephrasing: nothing to learn about the first text.
NOT_A_REPHRASE = frozenset({FALLBACK_INTENT, "out_of_scope", "greet", "thanks"})
# Rasa's trigger_intent (offers, notices) stores a user event of its own; no patient wrote it.
EXTERNAL_PREFIX = "EXTERNAL_"
OFFER_INTENT = "EXTERNAL_offer"
TODO_INTENT = "TODO_intent"

# A phone number typed into a text, with or without spaces, dashes, dots, slashes or brackets
# ("call me on (202) 555-0123"); sms_common's masking of free text only knows runs of digits.
_NUMBER_IN_TEXT = re.compile(r"\+?\(?\d[\d\s()./-]{5,}\d")
_MIN_PHONE_DIGITS = 7


# ------------------------------------------------------------------------------------- settings


def database_url(env: Mapping[str, str], root: Path = ROOT) -> str:
    """DATABASE_URL, else the embedded server of `make run` (which must have run once)."""
    url = env.get("DATABASE_URL", "")
    if url:
        return url
    data_dir = root / env.get("DATA_DIR", ".data")
    if not (data_dir / "postgres").is_dir():
        raise SystemExit(
            "No database yet: run `make run` once (it creates the embedded database under "
            f"{env.get('DATA_DIR', '.data')}/), or set DATABASE_URL."
        )
    backend = str(root / "backend")
    if backend not in sys.path:
        sys.path.insert(0, backend)  # the backend's package is not installed, it lives in backend/
    from waitlist.adapters.database import start_embedded_postgres

    return start_embedded_postgres(str(data_dir))


def psycopg_conninfo(url: str) -> str:
    """psycopg reads postgresql:// and postgres://; SQLAlchemy's `+driver` part must go."""
    return re.sub(r"^postgres(?:ql)?(?:\+\w+)?://", "postgresql://", url, count=1)


def confirm_threshold(env: Mapping[str, str]) -> float:
    raw = env.get("ACCEPT_CONFIRM_THRESHOLD", "")
    if not raw:
        return DEFAULT_THRESHOLD
    try:
        return float(raw)
    except ValueError:
        raise SystemExit("ACCEPT_CONFIRM_THRESHOLD must be a number, like 0.80") from None


# ------------------------------------------------------------------------------------- masking


def _mask_number(match: re.Match[str]) -> str:
    found = match.group(0)
    if sum(char.isdigit() for char in found) < _MIN_PHONE_DIGITS:
        return found  # "3-4pm", "11/28 at 3": not a phone
    return mask_phone(found)


def mask_numbers(text: str) -> str:
    """Every phone-like number in a patient's text, masked (a date written 2026-12-01 too)."""
    return _NUMBER_IN_TEXT.sub(_mask_number, text)


def one_line(text: str) -> str:
    """A text on one line: an SMS may hold line breaks, a table cell and a YAML example may not."""
    return " ".join(text.split())


# ------------------------------------------------------------------------------------- examples

TRAINING_DATA = "data/nlu"
HELD_OUT = "tests/nlu"
# "[next week](time_expression)" and "[Dr. Lee]{...}" are the text "next week" / "Dr. Lee" to a patient
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
_EXAMPLES_BLOCK = re.compile(r"^examples:\s*\|")


def example_key(text: str) -> str:
    """How two examples are compared: annotations, spacing and case do not count."""
    return one_line(_ANNOTATION.sub(r"\1", text)).casefold()


def _examples_in(path: Path) -> Iterable[str]:
    """The `- text` lines of every `examples: |` block of a Rasa NLU file.

    Read line by line rather than with a YAML parser: the backend venv does not promise one, and
    a block scalar of list lines is all Rasa's format has.
    """
    block_indent: int | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if block_indent is not None and stripped and indent <= block_indent:
            block_indent = None  # the block ended: this line is YAML again
        if block_indent is not None:
            if stripped.startswith("- "):
                yield stripped[2:]
        elif _EXAMPLES_BLOCK.match(stripped):
            block_indent = indent


def known_examples(root: Path = ROOT) -> dict[str, str]:
    """Every example of data/nlu/ and tests/nlu/, by example_key, with the folder it is in."""
    known: dict[str, str] = {}
    # data/nlu/ last, so that it wins: a text already trained on needs nothing from the designer
    for folder in (HELD_OUT, TRAINING_DATA):
        for path in sorted((root / folder).glob("**/*.yml")):
            for example in _examples_in(path):
                known[example_key(example)] = folder
    return known


# ------------------------------------------------------------------------------------- reading


@dataclass
class Turn:
    """One user event of the tracker store and the bot's answer to it."""

    sender_id: str
    event_id: int
    at: datetime
    text: str
    intent: str | None
    confidence: float | None
    # with nlu_fallback, the classifier's own best intent (from the ranking) tells the designer more
    best_guess: tuple[str, float] | None = None
    message_id: str | None = None
    next_action: str | None = None
    responses: list[str] = field(default_factory=list)

    @property
    def external(self) -> bool:
        return (self.intent or "").startswith(EXTERNAL_PREFIX) or self.text.startswith("EXTERNAL: ")


@dataclass(frozen=True)
class FollowUp:
    """What the patient did next that shows what a text really meant."""

    turn: Turn
    suggested_intent: str
    # False when NLU was sure of the first text: the patient may simply have changed their mind,
    # and "YES!!" must not become a decline example without a designer deciding so
    sure: bool = True


@dataclass
class Review:
    since: datetime
    until: datetime
    threshold: float
    inbound: int
    low_confidence: list[Turn]
    fallback: list[Turn]
    differed: list[tuple[Turn, FollowUp]]
    # before the limit cut them, newest first
    totals: dict[str, int] = field(default_factory=dict)


def fetch_events(
    conn: psycopg.Connection[Any], since: datetime, until: datetime
) -> list[tuple[Any, ...]]:
    """The events of the window in the order Rasa wrote them (ids; timestamps can tie)."""
    return conn.execute(
        "SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data FROM events"
        " WHERE type_name IN ('user', 'action', 'bot') AND timestamp >= %s AND timestamp < %s"
        " ORDER BY sender_id, id",
        (since.timestamp(), until.timestamp()),
    ).fetchall()


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _best_guess(parse_data: Mapping[str, Any]) -> tuple[str, float] | None:
    for ranked in parse_data.get("intent_ranking") or []:
        name, confidence = ranked.get("name"), _float(ranked.get("confidence"))
        if name and name != FALLBACK_INTENT and confidence is not None:
            return name, confidence
    return None


def build_turns(rows: Iterable[Sequence[Any]]) -> dict[str, list[Turn]]:
    """Each conversation's user events, each with the first action that answered it."""
    conversations: dict[str, list[Turn]] = {}
    current: Turn | None = None
    # bot events belong to the action just before them; only the answering action's are wanted
    answering = False
    for event_id, sender_id, type_name, timestamp, intent_name, action_name, raw in rows:
        try:
            data = json.loads(raw or "{}")
        except ValueError:
            data = {}  # a row some other writer mangled: its columns still say enough
        if current is not None and current.sender_id != sender_id:
            current, answering = None, False
        if type_name == "user":
            answering = False
            parse_data = data.get("parse_data") or {}
            intent = parse_data.get("intent") or {}
            current = Turn(
                sender_id=sender_id,
                event_id=event_id,
                at=datetime.fromtimestamp(timestamp, UTC),
                text=data.get("text") or "",
                intent=intent.get("name") or intent_name,
                confidence=_float(intent.get("confidence")),
                best_guess=_best_guess(parse_data),
                message_id=data.get("message_id"),
            )
            conversations.setdefault(sender_id, []).append(current)
        elif current is None:
            continue  # bot turns before the window's first text of this conversation
        elif type_name == "action":
            name = action_name or data.get("name")
            answering = current.next_action is None and bool(name) and name not in NOT_AN_ANSWER
            if answering:
                current.next_action = name
        elif type_name == "bot" and answering:
            response = (data.get("metadata") or {}).get("utter_action")
            if response and response not in current.responses:
                current.responses.append(response)
    return conversations


def _drop_repeats(turns: list[Turn]) -> list[Turn]:
    """A turn run again after a failure (same MessageSid) is one text, not two.

    The last run is kept: its answer is the one the patient got.
    """
    seen: set[str] = set()
    kept = []
    for turn in reversed(turns):
        if turn.message_id:
            if turn.message_id in seen:
                continue
            seen.add(turn.message_id)
        kept.append(turn)
    return kept[::-1]


# ------------------------------------------------------------------------------------- sorting


def is_fallback(turn: Turn) -> bool:
    return turn.intent == FALLBACK_INTENT or turn.next_action in FALLBACK_ACTIONS


def is_low_confidence(turn: Turn, threshold: float) -> bool:
    return turn.confidence is not None and turn.confidence < threshold


def what_it_meant(
    turn: Turn, later: Sequence[Turn], threshold: float, window: timedelta = FOLLOW_UP_WINDOW
) -> FollowUp | None:
    """The patient's next texts (same conversation) that show `turn` was not what NLU said.

    `later` holds the conversation's events after `turn`, offers included: a new offer starts a
    new question, so a yes to it does not contradict an earlier no.
    """
    if turn.next_action == CLARIFY_ACTION and later:
        # the very next text answers the clarify; after an offer it answers the offer instead
        answer = later[0]
        if (
            not answer.external
            and answer.at - turn.at <= window
            and answer.intent not in NOT_A_REPHRASE
            and not is_fallback(answer)
            and not is_low_confidence(answer, threshold)
        ):
            return FollowUp(answer, answer.intent or TODO_INTENT)
    contrary = CONTRADICTIONS.get(turn.intent or "")
    if contrary is None:
        return None
    for then in later:
        if then.at - turn.at > window or then.intent == OFFER_INTENT:
            return None
        if then.external:
            continue
        unsure = is_fallback(turn) or is_low_confidence(turn, threshold)
        if then.intent in contrary:
            return FollowUp(then, then.intent or TODO_INTENT, sure=unsure)
        if turn.intent == "accept" and RETRACTION.search(then.text):
            return FollowUp(then, "decline", sure=unsure)  # a yes taken back is a no
    return None


def build_review(
    conversations: Mapping[str, list[Turn]],
    since: datetime,
    until: datetime,
    threshold: float = DEFAULT_THRESHOLD,
    limit: int = DEFAULT_LIMIT,
) -> Review:
    """Sorts every inbound text of the window into at most one section; newest first."""
    low: list[Turn] = []
    fallback: list[Turn] = []
    differed: list[tuple[Turn, FollowUp]] = []
    inbound = 0
    for events in conversations.values():
        events = _drop_repeats(events)
        for index, turn in enumerate(events):
            if turn.external or not turn.text.strip():
                continue
            inbound += 1
            follow_up = what_it_meant(turn, events[index + 1 :], threshold)
            if follow_up is not None:
                differed.append((turn, follow_up))
            elif is_fallback(turn):
                fallback.append(turn)
            elif is_low_confidence(turn, threshold):
                low.append(turn)

    def newest_first(turn: Turn) -> tuple[datetime, int]:
        return turn.at, turn.event_id

    low.sort(key=newest_first, reverse=True)
    fallback.sort(key=newest_first, reverse=True)
    differed.sort(key=lambda pair: newest_first(pair[0]), reverse=True)
    return Review(
        since=since,
        until=until,
        threshold=threshold,
        inbound=inbound,
        low_confidence=low[:limit],
        fallback=fallback[:limit],
        differed=differed[:limit],
        totals={"low": len(low), "fallback": len(fallback), "differed": len(differed)},
    )


def load_review(
    conn: psycopg.Connection[Any],
    until: datetime,
    days: int = DEFAULT_DAYS,
    threshold: float = DEFAULT_THRESHOLD,
    limit: int = DEFAULT_LIMIT,
) -> Review:
    since = until - timedelta(days=days)
    return build_review(
        build_turns(fetch_events(conn, since, until)), since, until, threshold, limit
    )


# ------------------------------------------------------------------------------------- writing


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cell(text: str) -> str:
    """Patient text inside a Markdown table cell: one line, masked, pipes escaped."""
    return mask_numbers(one_line(text)).replace("\\", "\\\\").replace("|", "\\|")


def intent_label(turn: Turn) -> str:
    if turn.intent is None:
        return "(none)"
    label = turn.intent if turn.confidence is None else f"{turn.intent} {turn.confidence:.2f}"
    if turn.intent == FALLBACK_INTENT and turn.best_guess is not None:
        name, confidence = turn.best_guess
        label += f" (best: {name} {confidence:.2f})"
    return label


def action_label(turn: Turn) -> str:
    if turn.next_action is None:
        return "(none recorded)"
    # a custom action's own name hides what it said ("action_accept" may have asked to confirm)
    said = [name for name in turn.responses if name != turn.next_action]
    return " → ".join([turn.next_action, *said])


def _row(turn: Turn, *extra: str) -> str:
    cells = [
        iso(turn.at),
        mask_phone(turn.sender_id),
        cell(turn.text),
        intent_label(turn),
        action_label(turn),
        *extra,
    ]
    return "| " + " | ".join(cells) + " |"


_HEADER = ["time (UTC)", "phone", "message", "intent", "next action"]


def _table(header: list[str], rows: list[str]) -> list[str]:
    if not rows:
        return ["None."]
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header), *rows]


def _shown(result: Review, key: str, shown: int) -> str:
    total = result.totals.get(key, shown)
    return f"{total}" if total == shown else f"{shown} newest of {total}"


def render_markdown(result: Review, known: Mapping[str, str] | None = None) -> str:
    """The report; `known` (see known_examples) keeps texts already in data/ or tests/nlu/ out of
    the YAML block."""
    window_minutes = int(FOLLOW_UP_WINDOW.total_seconds() // 60)
    lines = [
        "# Patient texts to review",
        "",
        f"Inbound texts from {iso(result.since)} to {iso(result.until)}: {result.inbound}.",
        "Phones are masked; the texts are patients' own words: keep this file inside the clinic.",
        "Each text is listed once, newest first.",
        "",
        f"## 1. Low confidence (top intent below {result.threshold:.2f})",
        "",
        f"Texts: {_shown(result, 'low', len(result.low_confidence))}.",
        "",
        *_table(_HEADER, [_row(turn) for turn in result.low_confidence]),
        "",
        "## 2. Fallback (nlu_fallback, utter_clarify or action_default_fallback)",
        "",
        f"Texts: {_shown(result, 'fallback', len(result.fallback))}.",
        "",
        *_table(_HEADER, [_row(turn) for turn in result.fallback]),
        "",
        "## 3. Intent differed from what the patient then did",
        "",
        f"An accept or decline contradicted within {window_minutes} minutes, or a text the patient"
        " rephrased after utter_clarify.",
        "",
        f"Texts: {_shown(result, 'differed', len(result.differed))}.",
        "",
        *_table(
            [*_HEADER, "then", "suggested intent"],
            [
                _row(
                    turn,
                    f"{cell(then.turn.text)} ({intent_label(then.turn)}, "
                    f"{_minutes(then.turn.at - turn.at)})",
                    suggestion_label(then),
                )
                for turn, then in result.differed
            ],
        ),
        "",
        "## Examples to add",
        "",
        f"Paste into the right file under data/nlu/. Replace every {TODO_INTENT} with the intent the",
        "patient meant (or drop the line); check each suggested intent before keeping it.",
        "",
        "```yaml",
        render_nlu_yaml(result, known),
        "```",
    ]
    return "\n".join(lines) + "\n"


def suggestion_label(then: FollowUp) -> str:
    if then.sure:
        return then.suggested_intent
    return f"{then.suggested_intent} (or a change of mind)"


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return "under a minute later" if minutes < 1 else f"{minutes} min later"


def render_nlu_yaml(result: Review, known: Mapping[str, str] | None = None) -> str:
    """Rasa's NLU training-data format, one block per intent, each text once."""
    known = known or {}
    by_intent: dict[str, list[str]] = {}
    doubtful: dict[str, list[str]] = {}
    seen: set[str] = set()
    left_out: dict[str, int] = {}

    def add(into: dict[str, list[str]], intent: str, text: str) -> None:
        example = mask_numbers(one_line(text))
        key = example_key(example)
        if not example or key in seen:
            return
        seen.add(key)
        if key in known:
            # already trained on, or held out: a copy in data/ would make the test set lie
            left_out[known[key]] = left_out.get(known[key], 0) + 1
            return
        into.setdefault(intent, []).append(example)

    # the suggestions first, so that a text also listed without one keeps its suggestion
    for turn, then in result.differed:
        if then.sure:
            add(by_intent, then.suggested_intent, turn.text)
    for turn in [*result.fallback, *result.low_confidence]:
        add(by_intent, TODO_INTENT, turn.text)
    for turn, then in result.differed:
        if not then.sure:
            add(doubtful, then.suggested_intent, turn.text)
    lines = ['version: "3.1"', "nlu:" if by_intent else "nlu: []"]
    lines += _intent_blocks(by_intent)
    if doubtful:
        # commented out: a confident text the patient then contradicted is most often a change
        # of mind, and training it as the opposite intent would teach the model a wrong answer
        lines += [
            "# NLU was sure of these and the patient then said the opposite: a change of mind,",
            "# or a misreading? Uncomment only the misreadings.",
            *(f"# {line}" for line in _intent_blocks(doubtful)),
        ]
    if left_out.get(TRAINING_DATA):
        lines.append(f"# Left out, already in {TRAINING_DATA}/: {left_out[TRAINING_DATA]}.")
    if left_out.get(HELD_OUT):
        lines.append(
            f"# Left out, in the held-out test set {HELD_OUT}/ (never copy it into data/):"
            f" {left_out[HELD_OUT]}."
        )
    return "\n".join(lines)


def _intent_blocks(by_intent: Mapping[str, list[str]]) -> list[str]:
    lines: list[str] = []
    # TODO_intent first: those lines need the designer's decision
    for intent in sorted(by_intent, key=lambda name: (name != TODO_INTENT, name)):
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {example}" for example in by_intent[intent]]
    return lines


# ------------------------------------------------------------------------------------- command


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Patient texts to review: low confidence, fallbacks, intents the patient "
        "contradicted. Phones masked; message bodies printed."
    )
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="how many days back")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help="at most this many texts per section"
    )
    parser.add_argument("--out", help="write the Markdown here (default: standard output)")
    args = parser.parse_args(argv)
    if args.days <= 0 or args.limit <= 0:
        parser.error("--days and --limit must be positive")
    return args


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> int:
    """`now` ends the window (tests pass a fixed one); `env` replaces `make run`'s settings."""
    args = parse_args(argv)
    if env is None:
        # the same settings `make run` uses: defaults < .env < the environment
        from launcher.stack import compose_env

        env = compose_env()
    threshold = confirm_threshold(env)
    url = database_url(env)
    with psycopg.connect(psycopg_conninfo(url), connect_timeout=10) as conn:
        exists = conn.execute("SELECT to_regclass('events') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            print(
                "No conversations stored yet: Rasa creates the events table on its first start.",
                file=sys.stderr,
            )
            return 1
        result = load_review(conn, now or datetime.now(UTC), args.days, threshold, args.limit)
    report = render_markdown(result, known_examples(ROOT))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report, encoding="utf-8")
        print(f"wrote {out} ({result.inbound} inbound texts read)", file=sys.stderr)
    else:
        sys.stdout.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
