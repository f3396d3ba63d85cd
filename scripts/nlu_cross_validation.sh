#!/usr/bin/env bash
# 5-fold NLU cross-validation; prints intent accuracy and macro F1.
# Uses the project's Rasa venv when present, else `rasa` on PATH
# (override with RASA=... PYTHON=...). Takes several minutes: 5 trainings.
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ -x .venv-rasa/bin/rasa ]]; then
  RASA="${RASA:-.venv-rasa/bin/rasa}"
  PYTHON="${PYTHON:-.venv-rasa/bin/python}"
else
  RASA="${RASA:-rasa}"
  PYTHON="${PYTHON:-python}"
fi
export SQLALCHEMY_SILENCE_UBER_WARNING=1

"$RASA" test nlu --nlu data/nlu --config config.yml \
  --cross-validation -f 5 --out results/

"$PYTHON" - <<'PY'
import json

with open("results/intent_report.json", encoding="utf-8") as fh:
    report = json.load(fh)
accuracy = report["accuracy"]
macro_f1 = report["macro avg"]["f1-score"]
print(f"intent accuracy: {accuracy:.4f}")
print(f"intent macro F1: {macro_f1:.4f}")
weak = sorted(
    (name, scores["f1-score"])
    for name, scores in report.items()
    if isinstance(scores, dict) and "f1-score" in scores and name not in ("macro avg", "weighted avg", "micro avg")
)
for name, f1 in weak:
    if f1 < 0.95:
        print(f"  below 0.95: {name} f1={f1:.3f}")
PY
