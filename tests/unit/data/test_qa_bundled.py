"""bundled:qa_tlnlp: size, unanswerable share, splits by passage, offsets, and the files match their source."""

from __future__ import annotations

import json

from tlnlp.config import DataArgs
from tlnlp.config.qa_args import QAArgs
from tlnlp.data.bundled import QA_CORPORA
from tlnlp.data.qa_build import SOURCE_DIR, build_qa_tlnlp, load_source
from tlnlp.tasks.qa.data import load_qa_data


def test_committed_files_are_the_build_of_the_source():
    built = build_qa_tlnlp()
    for split, document in built.items():
        assert json.loads((SOURCE_DIR / f"{split}.json").read_text(encoding="utf-8")) == document, split


def test_size_topics_and_unanswerable_questions():
    passages = load_source()
    questions = [q for p in passages for q in p["questions"]]
    assert len(passages) >= 40 and len(questions) >= 200
    assert sum(q["a"] is None for q in questions) >= 40
    assert all(80 <= len(p["context"].split()) <= 200 for p in passages)
    assert len({p["title"] for p in passages}) == len(passages)


def test_loaded_splits_are_disjoint_by_passage_and_offsets_hold():
    data = load_qa_data(DataArgs(dataset_name="bundled:qa_tlnlp"), QAArgs(version_2_with_negative=True))
    assert set(data.splits) == {"train", "validation", "test"}
    contexts = {s: set(d["context"]) for s, d in data.splits.items()}
    assert not (contexts["train"] & contexts["validation"] or contexts["train"] & contexts["test"]
                or contexts["validation"] & contexts["test"])
    for split in data.splits.values():
        for row in split:
            for text, start in zip(row["answers"]["text"], row["answers"]["answer_start"], strict=True):
                assert row["context"][start:start + len(text)] == text
    assert all(data.unanswerable(s) > 0 for s in data.splits)
    assert data.version == QA_CORPORA.get("qa_tlnlp").version
    again = load_qa_data(DataArgs(dataset_name="bundled:qa_tlnlp"), QAArgs(version_2_with_negative=True))
    assert again.fingerprint == data.fingerprint
