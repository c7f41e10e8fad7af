"""Post-processing on hand-built windows: n-best order, context-only spans, lengths, windows, null answers."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from tlnlp.tasks.qa import postprocess_qa_predictions, write_qa_predictions

NC = [-1, -1]
# context "red green blue" -> tokens: red [0,3), green [4,9), blue [10,14)
CONTEXT = "red green blue"
CTX = [[0, 3], [4, 9], [10, 14]]


def _windows(offsets, example_ids, cls_index=None):
    return {"example_id": example_ids, "offset_mapping": offsets,
            "cls_index": cls_index if cls_index is not None else [0] * len(offsets)}


def _one_window():
    # [CLS] q q [SEP] red green blue [SEP]
    return _windows([[NC, NC, NC, NC, *CTX, NC]], ["e"])


def _logits(width, start=None, end=None, rows=1):
    s = np.zeros((rows, width), dtype=np.float32)
    e = np.zeros((rows, width), dtype=np.float32)
    for (r, i), v in (start or {}).items():
        s[r, i] = v
    for (r, i), v in (end or {}).items():
        e[r, i] = v
    return s, e


EXAMPLES = {"id": ["e"], "context": [CONTEXT]}


def test_best_span_and_nbest_order():
    s, e = _logits(8, {(0, 5): 5.0, (0, 4): 2.0}, {(0, 5): 4.0, (0, 6): 3.0})
    out = postprocess_qa_predictions(EXAMPLES, _one_window(), s, e, n_best_size=4)
    assert out.predictions == {"e": "green"}
    nbest = out.nbest["e"]
    assert [c["text"] for c in nbest] == ["green", "green blue", "red green", "red green blue"]
    assert [c["score"] for c in nbest] == sorted((c["score"] for c in nbest), reverse=True)
    assert nbest[0]["score"] == pytest.approx(9.0) and nbest[0]["answer_start"] == 4
    assert sum(c["probability"] for c in nbest) == pytest.approx(1.0)


def test_spans_outside_the_context_are_never_chosen():
    # huge logits on question tokens and [SEP]; the context has small ones
    s, e = _logits(8, {(0, 1): 50.0, (0, 7): 50.0, (0, 6): 1.0}, {(0, 2): 50.0, (0, 7): 50.0, (0, 6): 1.0})
    out = postprocess_qa_predictions(EXAMPLES, _one_window(), s, e)
    assert out.predictions["e"] == "blue"
    assert all(c["text"] in CONTEXT for c in out.nbest["e"])


def test_start_after_end_is_not_an_answer():
    s, e = _logits(8, {(0, 6): 10.0, (0, 4): 1.0}, {(0, 4): 10.0, (0, 5): 1.0})
    out = postprocess_qa_predictions(EXAMPLES, _one_window(), s, e)
    # the reversed pair (start 6, end 4) would score 20; among start <= end, red (1 + 10) beats blue (10 + 0)
    assert out.predictions["e"] == "red"
    for cand in out.nbest["e"]:
        assert CONTEXT.index(cand["text"]) == cand["answer_start"]


def test_max_answer_length():
    s, e = _logits(8, {(0, 4): 5.0}, {(0, 6): 5.0})
    long = postprocess_qa_predictions(EXAMPLES, _one_window(), s, e, max_answer_length=3)
    short = postprocess_qa_predictions(EXAMPLES, _one_window(), s, e, max_answer_length=2)
    assert long.predictions["e"] == "red green blue"
    assert short.predictions["e"] != "red green blue"
    assert all(len(c["text"].split()) <= 2 for c in short.nbest["e"])


def test_windows_are_merged_and_shared_spans_kept_once():
    # two windows of one example sharing "green": window 0 sees red green, window 1 sees green blue
    windows = _windows([[NC, NC, [0, 3], [4, 9], NC], [NC, NC, [4, 9], [10, 14], NC]], ["e", "e"])
    s, e = _logits(5, {(0, 3): 1.0, (1, 2): 4.0, (1, 3): 6.0}, {(0, 3): 1.0, (1, 2): 3.0, (1, 3): 6.0}, rows=2)
    out = postprocess_qa_predictions(EXAMPLES, windows, s, e, n_best_size=10)
    assert out.predictions["e"] == "blue"  # window 1: 6 + 6
    texts = [c["text"] for c in out.nbest["e"]]
    assert texts.count("green") == 1  # found in both windows, listed once
    green = next(c for c in out.nbest["e"] if c["text"] == "green")
    assert green["score"] == pytest.approx(7.0)  # its best occurrence (window 1: 4 + 3), not window 0's 2.0
    assert set(texts) == {"red", "green", "blue", "red green", "green blue"}


def test_null_answers_and_threshold():
    # null score 10 + 10 = 20; best span "blue" 6 + 6 = 12 -> null wins by 8
    s, e = _logits(8, {(0, 0): 10.0, (0, 6): 6.0}, {(0, 0): 10.0, (0, 6): 6.0})
    v2 = postprocess_qa_predictions(EXAMPLES, _one_window(), s, e, version_2_with_negative=True)
    assert v2.predictions["e"] == "" and v2.span_predictions["e"] == "blue"
    assert v2.null_odds["e"] == pytest.approx(8.0)
    assert v2.nbest["e"][0]["text"] == "" and v2.nbest["e"][0]["answer_start"] is None
    lenient = postprocess_qa_predictions(EXAMPLES, _one_window(), s, e, version_2_with_negative=True,
                                         null_score_diff_threshold=8.5)
    assert lenient.predictions["e"] == "blue"
    v1 = postprocess_qa_predictions(EXAMPLES, _one_window(), s, e)
    assert v1.predictions["e"] == "blue" and v1.null_odds is None
    assert all(c["text"] for c in v1.nbest["e"])


def test_null_score_is_the_smallest_over_windows_and_uses_each_windows_cls():
    # left-padded windows put [CLS] elsewhere: cls_index says where
    windows = _windows([[NC, NC, [0, 3], NC], [NC, NC, [10, 14], NC]], ["e", "e"], cls_index=[1, 0])
    s, e = _logits(4, {(0, 1): 3.0, (1, 0): 1.0, (0, 2): 0.5}, {(0, 1): 3.0, (1, 0): 1.0, (0, 2): 0.5}, rows=2)
    out = postprocess_qa_predictions(EXAMPLES, windows, s, e, version_2_with_negative=True)
    assert out.null_odds["e"] == pytest.approx(2.0 - 1.0)  # min(6, 2) minus best span "red" (1.0)
    assert out.predictions["e"] == ""


def test_no_context_token_gives_empty_answer_and_is_reported(caplog):
    windows = _windows([[NC, NC, NC]], ["e"])
    s, e = _logits(3)
    with caplog.at_level(logging.WARNING, logger="tlnlp.tasks.qa.postprocess"):
        out = postprocess_qa_predictions(EXAMPLES, windows, s, e)
    assert out.predictions["e"] == "" and out.no_span == ["e"]
    assert "no valid answer span" in caplog.text


def test_bad_inputs_are_errors():
    s, e = _logits(8)
    with pytest.raises(ValueError, match="do not match"):
        postprocess_qa_predictions(EXAMPLES, _one_window(), s[:, :4].repeat(2, 0), e)
    with pytest.raises(ValueError, match="unknown example"):
        postprocess_qa_predictions(EXAMPLES, _windows([[NC] * 8], ["x"]), s, e)
    with pytest.raises(ValueError, match="no window"):
        postprocess_qa_predictions({"id": ["e", "f"], "context": [CONTEXT, CONTEXT]}, _one_window(), s, e)


def _reference(examples, windows, start, end, n_best, max_len):
    """A plain loop over every (start, end) pair: the rules of the module docstring, written directly."""
    answers = {}
    for qid, context in zip(examples["id"], examples["context"], strict=True):
        pool = []
        for w, wid in enumerate(windows["example_id"]):
            if wid != qid:
                continue
            offs = windows["offset_mapping"][w]
            found = []
            for a in range(len(offs)):
                for b in range(a, min(a + max_len, len(offs))):
                    if offs[a][0] >= 0 and offs[b][0] >= 0 and offs[b][1] > offs[a][0]:
                        found.append((-(float(start[w, a]) + float(end[w, b])), w, a, b))
            pool.extend(sorted(found)[:n_best])
        seen, best = set(), []
        for neg, w, a, b in sorted(pool):
            span = (windows["offset_mapping"][w][a][0], windows["offset_mapping"][w][b][1])
            if span not in seen:
                seen.add(span)
                best.append((context[span[0]:span[1]], -neg))
        answers[qid] = best[:n_best]
    return answers


def test_matches_a_plain_loop_on_random_windows():
    rng = np.random.default_rng(0)
    examples = {"id": [], "context": []}
    windows = {"example_id": [], "offset_mapping": [], "cls_index": []}
    for k in range(12):
        words = [f"w{k}{i}" for i in range(int(rng.integers(5, 30)))]
        context = " ".join(words)
        examples["id"].append(f"q{k}")
        examples["context"].append(context)
        starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]])
        spans = [[int(s), int(s) + len(w)] for s, w in zip(starts, words, strict=True)]
        for lo in range(0, len(spans), 6):  # windows of 8 context tokens, 2 shared
            windows["example_id"].append(f"q{k}")
            windows["offset_mapping"].append([NC, NC, *spans[lo:lo + 8], NC])
            windows["cls_index"].append(0)
    width = max(len(o) for o in windows["offset_mapping"]) + 3  # extra positions, like the Trainer's padding
    start = rng.normal(size=(len(windows["example_id"]), width)).astype(np.float32)
    end = rng.normal(size=start.shape).astype(np.float32)
    out = postprocess_qa_predictions(examples, windows, start, end, n_best_size=5, max_answer_length=4)
    expected = _reference(examples, windows, start, end, 5, 4)
    for qid, best in expected.items():
        assert [c["text"] for c in out.nbest[qid]] == [t for t, _ in best]
        assert [c["score"] for c in out.nbest[qid]] == pytest.approx([s for _, s in best])
        assert out.predictions[qid] == best[0][0]


def test_files_written(tmp_path):
    s, e = _logits(8, {(0, 0): 10.0, (0, 6): 6.0}, {(0, 0): 10.0, (0, 6): 6.0})
    out = postprocess_qa_predictions(EXAMPLES, _one_window(), s, e, version_2_with_negative=True)
    paths = write_qa_predictions(tmp_path, out, prefix="test_")
    assert sorted(p.name for p in paths) == ["test_nbest_predictions.json", "test_null_odds.json",
                                             "test_predictions.json"]
    assert json.loads((tmp_path / "test_predictions.json").read_text()) == {"e": ""}
    assert json.loads((tmp_path / "test_null_odds.json").read_text())["e"] == pytest.approx(8.0)
