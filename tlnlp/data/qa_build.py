"""Build the bundled ``qa_tlnlp`` dataset from its source: offsets computed and checked, splits by passage.

The source (``qa_tlnlp/source_*.yaml``) lists passages written for tlnlp, each with questions whose answers are
quoted from the passage (``a``; ``occurrence`` picks a later occurrence of the same text, counting from 1) or
``a: null`` for a question the passage does not answer. Building finds each answer in its passage, so every
``answer_start`` is right by construction, assigns whole passages to train/validation/test with a fixed seed,
and writes one SQuAD v2.0 JSON file per split. Regenerate after editing the source::

    python -m tlnlp.data.qa_build
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

__all__ = ["SOURCE_DIR", "build_qa_tlnlp", "load_source", "write_qa_tlnlp"]

SOURCE_DIR = Path(__file__).resolve().parent / "qa_tlnlp"
SPLIT_SEED = 1234
#: Share of passages in validation and in test (the rest is training).
HELD_OUT = {"validation": 0.15, "test": 0.15}
WORDS = (80, 200)


def load_source(folder: Path = SOURCE_DIR) -> list[dict[str, Any]]:
    """Every passage of the source files, in file order."""
    passages: list[dict[str, Any]] = []
    for path in sorted(folder.glob("source_*.yaml")):
        passages.extend(yaml.safe_load(path.read_text(encoding="utf-8")))
    return passages


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _find(context: str, text: str, occurrence: int, where: str) -> int:
    position = -1
    for _ in range(occurrence):
        position = context.find(text, position + 1)
        if position == -1:
            raise ValueError(f"{where}: answer {text!r} (occurrence {occurrence}) is not in the passage.")
    assert context[position:position + len(text)] == text
    return position


def _paragraph(passage: dict[str, Any]) -> dict[str, Any]:
    title, context = passage["title"], " ".join(passage["context"].split())
    words = len(context.split())
    if not WORDS[0] <= words <= WORDS[1]:
        raise ValueError(f"passage {title!r} has {words} words; keep passages between {WORDS[0]} and {WORDS[1]}.")
    qas = []
    for k, item in enumerate(passage["questions"], start=1):
        qid = f"{_slug(title)}-{k}"
        if item["a"] is None:
            qas.append({"id": qid, "question": item["q"], "answers": [], "is_impossible": True})
            continue
        start = _find(context, item["a"], int(item.get("occurrence", 1)), qid)
        qas.append({"id": qid, "question": item["q"], "answers": [{"text": item["a"], "answer_start": start}],
                    "is_impossible": False})
    return {"title": title, "paragraphs": [{"context": context, "qas": qas}]}


def build_qa_tlnlp(folder: Path = SOURCE_DIR) -> dict[str, dict[str, Any]]:
    """The SQuAD v2.0 document of each split, built from the source.

    Raises:
        ValueError: A passage is too short or too long, an answer is not in its passage, or titles repeat.
    """
    passages = load_source(folder)
    titles = [p["title"] for p in passages]
    if len(set(titles)) != len(titles):
        raise ValueError("passage titles must be unique (they make the question ids).")
    articles = [_paragraph(p) for p in passages]
    order = np.random.default_rng(SPLIT_SEED).permutation(len(articles))
    counts = {split: round(len(articles) * share) for split, share in HELD_OUT.items()}
    cut = {"validation": order[:counts["validation"]],
           "test": order[counts["validation"]:counts["validation"] + counts["test"]],
           "train": order[counts["validation"] + counts["test"]:]}
    return {split: {"version": "v2.0", "data": [articles[i] for i in sorted(int(j) for j in rows)]}
            for split, rows in cut.items()}


def write_qa_tlnlp(folder: Path = SOURCE_DIR) -> list[Path]:
    """Build and write ``train.json``, ``validation.json`` and ``test.json`` next to the source."""
    written = []
    for split, document in build_qa_tlnlp(folder).items():
        path = folder / f"{split}.json"
        path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_qa_tlnlp():
        print(written_path.name)
