"""Held-out NLU gate: scores the trained model on tests/nlu/heldout.yml.

Run with the Rasa venv's python from anywhere:

    .venv-rasa/bin/python scripts/nlu_heldout.py

It runs `rasa test nlu` once (one model load, the full pipeline including the
custom components in nlu_components/), then reads the intent report and every
message's prediction, prints a Markdown summary, writes the same as
results/nlu-heldout/summary.json and exits 1 when the gate below fails
(2 when the evaluation itself could not run).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = Path("tests/nlu/heldout.yml")
MODEL = Path("models/waitlist.tar.gz")
OUT_DIR = Path("results/nlu-heldout")
RASA = Path(".venv-rasa/bin/rasa")

# The gate. Accuracy below 0.95 on text the model never saw means patients
# often get the wrong reply. A single false claim is one too many: a confident
# "accept" books the slot without asking, so a "no", a question or nonsense
# read as a yes takes an appointment from the patient and from the next one
# on the list.
MIN_ACCURACY = 0.95
MAX_FALSE_CLAIMS = 0

# Same default and environment variable as action_accept, which asks
# "Just to confirm ..." below it and claims the slot at or above it.
DEFAULT_ACCEPT_CONFIRM_THRESHOLD = 0.80
ACCEPT = "accept"

# Written by `rasa test nlu`; removed before each run because Rasa leaves an
# old errors file in place when a new run has no errors.
RASA_OUTPUTS = ("intent_report.json", "intent_errors.json", "intent_successes.json")

logger = logging.getLogger("nlu_heldout")


@dataclass
class Example:
    """One held-out message, its true intent and its language tag."""

    text: str
    intent: str
    language: str


@dataclass
class Prediction:
    """What the model said about one held-out message."""

    text: str
    intent: str
    language: str
    predicted: str
    confidence: float


def accept_threshold() -> float:
    """The claim threshold, read like action_accept reads it."""
    raw = os.environ.get("ACCEPT_CONFIRM_THRESHOLD")
    if raw is None:
        return DEFAULT_ACCEPT_CONFIRM_THRESHOLD
    try:
        return float(raw)
    except ValueError:
        logger.warning(
            "ACCEPT_CONFIRM_THRESHOLD=%r is not a number; using %s",
            raw,
            DEFAULT_ACCEPT_CONFIRM_THRESHOLD,
        )
        return DEFAULT_ACCEPT_CONFIRM_THRESHOLD


def load_examples(path: Path) -> list[Example]:
    """Reads the set with Rasa's own reader, so texts match what Rasa scores."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    training_data = RasaYAMLReader().read(str(path))
    examples = []
    for message in training_data.intent_examples:
        metadata = message.get("metadata") or {}
        language = (metadata.get("intent") or {}).get("language") or "unknown"
        examples.append(Example(message.get("text"), message.get("intent"), language))
    return examples


def run_rasa_test(model: Path, out_dir: Path) -> None:
    """Runs `rasa test nlu`; its chatter goes to a log file next to the report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in RASA_OUTPUTS:
        (out_dir / name).unlink(missing_ok=True)
    env = dict(os.environ)
    env["SQLALCHEMY_SILENCE_UBER_WARNING"] = "1"
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = [
        os.environ.get("RASA", str(RASA)),
        "test",
        "nlu",
        "--nlu",
        str(HELDOUT),
        "--model",
        str(model),
        "--out",
        str(out_dir),
        # Correct predictions too: with the errors file that is every message.
        "--successes",
    ]
    print("$ " + " ".join(command), flush=True)
    log_path = out_dir / "rasa-test.log"
    with log_path.open("w", encoding="utf-8") as log:
        completed = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    if completed.returncode != 0:
        tail = log_path.read_text(encoding="utf-8").splitlines()[-30:]
        raise RuntimeError(
            f"rasa test nlu exited with {completed.returncode}; last lines of {log_path}:\n"
            + "\n".join(tail)
        )


def read_json(path: Path, default: Any) -> Any:
    """Loads a JSON file, or `default` when Rasa did not write it."""
    if not path.exists():
        return default
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def load_predictions(examples: list[Example], out_dir: Path) -> list[Prediction]:
    """Joins Rasa's per-message successes and errors back onto the held-out set.

    Rasa reports the classifier's intent when the FallbackClassifier fired
    (it undoes the fallback), so a weak "accept" still shows up as "accept"
    with its low confidence; the carrier-keyword and emergency overrides are
    kept because they run after the fallback.
    """
    rows = read_json(out_dir / "intent_successes.json", []) + read_json(
        out_dir / "intent_errors.json", []
    )
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        by_key[(row["text"], row["intent"])] = row["intent_prediction"]
    predictions = []
    missing = []
    for example in examples:
        predicted = by_key.get((example.text, example.intent))
        if predicted is None:
            missing.append(example.text)
            continue
        predictions.append(
            Prediction(
                text=example.text,
                intent=example.intent,
                language=example.language,
                predicted=predicted.get("name") or "",
                confidence=float(predicted.get("confidence") or 0.0),
            )
        )
    if missing:
        raise RuntimeError(f"no prediction for {len(missing)} message(s), e.g. {missing[:3]}")
    return predictions


def per_intent_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-intent rows from Rasa's intent report, worst F1 first."""
    rows = []
    for name, scores in report.items():
        if not isinstance(scores, dict) or name.endswith(" avg"):
            continue
        rows.append(
            {
                "intent": name,
                "precision": round(float(scores["precision"]), 4),
                "recall": round(float(scores["recall"]), 4),
                "f1": round(float(scores["f1-score"]), 4),
                "support": int(scores["support"]),
                "confused_with": scores.get("confused_with", {}),
            }
        )
    return sorted(rows, key=lambda row: (row["f1"], row["intent"]))


def claim_costs(
    predictions: list[Prediction], threshold: float
) -> tuple[list[Prediction], list[Prediction], list[Prediction]]:
    """What the claim threshold costs: the false claims (a non-accept read as accept at or above
    it books the slot unasked), the accepts read as accepts, and those among them below it, which
    get "Just to confirm" first (one more text)."""
    false_claims = [
        p
        for p in predictions
        if p.intent != ACCEPT and p.predicted == ACCEPT and p.confidence >= threshold
    ]
    accepted = [p for p in predictions if p.intent == ACCEPT and p.predicted == ACCEPT]
    needs_confirmation = [p for p in accepted if p.confidence < threshold]
    return false_claims, accepted, needs_confirmation


def summarise(
    examples: list[Example], predictions: list[Prediction], report: dict[str, Any], threshold: float
) -> dict[str, Any]:
    """All the numbers the gate and the printout use."""
    correct = sum(p.predicted == p.intent for p in predictions)
    accuracy = correct / len(predictions)

    false_claims, accepted, needs_confirmation = claim_costs(predictions, threshold)
    true_accepts = [p for p in predictions if p.intent == ACCEPT]

    by_language: dict[str, list[Prediction]] = defaultdict(list)
    for p in predictions:
        by_language[p.language].append(p)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for example in examples:
        counts[example.intent][example.language] += 1

    return {
        "messages": len(predictions),
        "accuracy": round(accuracy, 4),
        "macro_f1": round(float(report["macro avg"]["f1-score"]), 4),
        "accept_confirm_threshold": threshold,
        "false_claim_count": len(false_claims),
        "false_claims": [asdict(p) for p in sorted(false_claims, key=lambda p: -p.confidence)],
        "accept_messages": len(true_accepts),
        "accept_recall": round(len(accepted) / len(true_accepts), 4) if true_accepts else None,
        "confirmation_rate": (
            round(len(needs_confirmation) / len(true_accepts), 4) if true_accepts else None
        ),
        "accept_needing_confirmation": [asdict(p) for p in needs_confirmation],
        "accuracy_by_language": {
            language: round(sum(p.predicted == p.intent for p in rows) / len(rows), 4)
            for language, rows in sorted(by_language.items())
        },
        "counts": {
            intent: dict(sorted(per_language.items()))
            for intent, per_language in sorted(counts.items())
        },
        "per_intent": per_intent_table(report),
        "errors": [asdict(p) for p in predictions if p.predicted != p.intent],
        "gate": {"min_accuracy": MIN_ACCURACY, "max_false_claims": MAX_FALSE_CLAIMS},
    }


def markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown, for a terminal or a pull request."""
    threshold = summary["accept_confirm_threshold"]
    lines = [
        f"## Held-out NLU ({summary['messages']} messages)",
        "",
        f"- intent accuracy: {summary['accuracy']:.4f} (gate >= {MIN_ACCURACY})",
        f"- macro F1: {summary['macro_f1']:.4f}",
        "- accuracy by language: "
        + ", ".join(f"{lang} {acc:.4f}" for lang, acc in summary["accuracy_by_language"].items()),
        f"- false claims (not accept, predicted accept >= {threshold:.2f}): "
        f"{summary['false_claim_count']} (gate <= {MAX_FALSE_CLAIMS})",
    ]
    for claim in summary["false_claims"]:
        lines.append(f"  - {claim['confidence']:.3f} [{claim['intent']}] {claim['text']}")
    if summary["accept_messages"]:
        lines += [
            f"- accept recall: {summary['accept_recall']:.4f} of {summary['accept_messages']}",
            f"- confirmation rate (accept predicted below {threshold:.2f}): "
            f"{summary['confirmation_rate']:.4f}",
        ]
    lines += [
        "",
        "| intent | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in summary["per_intent"]:
        lines.append(
            f"| {row['intent']} | {row['precision']:.3f} | {row['recall']:.3f} "
            f"| {row['f1']:.3f} | {row['support']} |"
        )
    if summary["errors"]:
        lines += ["", f"### Misclassified ({len(summary['errors'])})", ""]
        for error in sorted(summary["errors"], key=lambda e: (e["intent"], e["text"])):
            lines.append(
                f"- [{error['intent']} -> {error['predicted']} {error['confidence']:.2f}] "
                f"{error['text']}"
            )
    return "\n".join(lines)


def gate_failures(summary: dict[str, Any]) -> list[str]:
    """Reasons the gate fails; empty when it passes."""
    failures = []
    if summary["accuracy"] < MIN_ACCURACY:
        failures.append(f"accuracy {summary['accuracy']:.4f} < {MIN_ACCURACY}")
    if summary["false_claim_count"] > MAX_FALSE_CLAIMS:
        failures.append(f"{summary['false_claim_count']} false claim(s) > {MAX_FALSE_CLAIMS}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL, help="trained model archive")
    parser.add_argument(
        "--no-run",
        action="store_true",
        help="re-read the last run's results instead of running rasa test nlu again",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    os.chdir(ROOT)

    threshold = accept_threshold()
    examples = load_examples(HELDOUT)
    duplicates = [text for text, n in Counter(e.text for e in examples).items() if n > 1]
    if duplicates:
        # Predictions are matched back by text; a repeated text would be ambiguous.
        print(f"held-out set repeats messages: {duplicates}", file=sys.stderr)
        return 2
    try:
        if not args.no_run:
            if not args.model.exists():
                raise RuntimeError(f"no model at {args.model}; run `make train` first")
            run_rasa_test(args.model, OUT_DIR)
        report = read_json(OUT_DIR / "intent_report.json", None)
        if report is None:
            raise RuntimeError(f"no {OUT_DIR / 'intent_report.json'}")
        predictions = load_predictions(examples, OUT_DIR)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    summary = summarise(examples, predictions, report, threshold)
    failures = gate_failures(summary)
    summary["passed"] = not failures
    summary["failures"] = failures
    with (OUT_DIR / "summary.json").open("w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2, ensure_ascii=False)
        fh.write("\n")

    print(markdown(summary))
    print()
    if failures:
        print("held-out NLU gate FAILED: " + "; ".join(failures))
        return 1
    print("held-out NLU gate passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
