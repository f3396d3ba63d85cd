"""Held-out messages that also appear in the training data (case, accents and punctuation aside).

    .venv-rasa/bin/python scripts/heldout_overlap.py          # list them
    .venv-rasa/bin/python scripts/heldout_overlap.py --drop   # remove them from tests/nlu/heldout.yml

Prints only held-out texts, so whoever writes held-out examples never has to read data/.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader  # noqa: E402

from nlu_components.safety_order import plain  # noqa: E402

HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
EXAMPLE = re.compile(r"^\s+- (?P<text>.+)$")


def same_words(text: str) -> str:
    """Case, accents, punctuation and spacing aside: the words a classifier sees."""
    return " ".join(re.findall(r"\w+", plain(text)))


def training_texts() -> set[str]:
    texts: set[str] = set()
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        examples = RasaYAMLReader().read(str(path)).intent_examples
        texts.update(same_words(m.get("text")) for m in examples)
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--drop", action="store_true", help="remove them from the held-out file")
    args = parser.parse_args()
    training = training_texts()
    kept, dropped = [], []
    for line in HELDOUT.read_text(encoding="utf-8").splitlines():
        match = EXAMPLE.match(line)
        text = match.group("text").strip().strip("\"'") if match else None
        if text is not None and same_words(text) in training:
            dropped.append(text)
            if args.drop:
                continue
        kept.append(line)
    for text in dropped:
        print(text)
    if args.drop:
        HELDOUT.write_text("\n".join(kept) + "\n", encoding="utf-8")
    print(f"{len(dropped)} held-out message(s) also in data/nlu/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
