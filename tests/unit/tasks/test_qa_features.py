"""Windows, offsets and start/end labels on hand-built cases: several windows, window edges, left padding."""

from __future__ import annotations

import pytest

from tlnlp.tasks.qa import prepare_qa_features

WORDS = [f"word{i}" for i in range(60)]
LONG = " ".join(WORDS)  # each 'wordN' is several word pieces; the context spans many windows


def _examples(question, context, answer=None, start=None):
    answers = {"text": [], "answer_start": []}
    if answer is not None:
        answers = {"text": [answer], "answer_start": [context.index(answer) if start is None else start]}
    return {"id": ["q"], "question": [question], "context": [context], "answers": [answers]}


def _answer_text(features, i, context):
    s, e = features["start_positions"][i], features["end_positions"][i]
    offsets = features["offset_mapping"][i]
    return context[offsets[s][0]:offsets[e][1]]


def _context_range(features, i):
    inside = [o for o in features["offset_mapping"][i] if o[0] >= 0]
    return inside[0][0], inside[-1][1]


def test_single_window_labels_point_at_the_answer(tokenizer):
    context = "The first bicycle was built by Karl Drais in 1817 in Germany."
    feats = prepare_qa_features(_examples("Who built it?", context, "Karl Drais"), tokenizer, 64, 16,
                                for_evaluation=True)
    assert len(feats["input_ids"]) == 1
    assert _answer_text(feats, 0, context) == "Karl Drais"
    assert tokenizer.decode(feats["input_ids"][0][feats["start_positions"][0]:feats["end_positions"][0] + 1]) \
        == "karl drais"
    # offsets: question and special tokens are outside the context
    seq = feats["offset_mapping"][0]
    assert seq[0] == [-1, -1] and feats["cls_index"][0] == 0
    assert all(o == [-1, -1] for o in seq[:4])  # [CLS] who built it


@pytest.mark.parametrize(("max_len", "stride"), [(24, 4), (32, 8), (40, 16), (48, 20)])
def test_every_window_labels_the_answer_when_whole_else_cls(tokenizer, max_len, stride):
    answer = "word30 word31"
    feats = prepare_qa_features(_examples("where?", LONG, answer), tokenizer, max_len, stride, for_evaluation=True)
    start_char = LONG.index(answer)
    end_char = start_char + len(answer)
    inside, outside = 0, 0
    assert len(feats["input_ids"]) > 2
    for i in range(len(feats["input_ids"])):
        lo, hi = _context_range(feats, i)
        if lo <= start_char and end_char <= hi:
            inside += 1
            assert _answer_text(feats, i, LONG) == answer
        else:
            outside += 1
            assert feats["start_positions"][i] == feats["end_positions"][i] == feats["cls_index"][i] == 0
        assert len(feats["input_ids"][i]) <= max_len
    assert inside >= 1 and outside >= 1


def test_neighbouring_windows_share_the_stride(tokenizer):
    feats = prepare_qa_features(_examples("where?", LONG), tokenizer, 32, 8, for_evaluation=True)
    for a, b in zip(feats["offset_mapping"], feats["offset_mapping"][1:], strict=False):
        tail = [tuple(o) for o in a if o[0] >= 0][-8:]
        head = [tuple(o) for o in b if o[0] >= 0][:8]
        assert tail == head


def _edge_case(tokenizer, at_end: bool):
    """Find a window setting where the answer is the last (or first) context token span of some window."""
    for max_len in range(20, 60):
        for answer in WORDS[10:50]:
            feats = prepare_qa_features(_examples("where?", LONG, answer), tokenizer, max_len, 6,
                                        for_evaluation=True)
            start_char = LONG.index(answer + " ")
            for i in range(len(feats["input_ids"])):
                inside = [o for o in feats["offset_mapping"][i] if o[0] >= 0]
                edge = inside[-1][1] == start_char + len(answer) if at_end else inside[0][0] == start_char
                if edge:
                    return feats, i, answer
    raise AssertionError("no edge case found")


@pytest.mark.parametrize("at_end", [True, False], ids=["answer-ends-window", "answer-starts-window"])
def test_answer_at_a_window_edge_is_labelled(tokenizer, at_end):
    feats, i, answer = _edge_case(tokenizer, at_end)
    assert feats["start_positions"][i] != 0
    assert _answer_text(feats, i, LONG) == answer


def test_answer_cut_by_a_window_goes_to_cls(tokenizer):
    # a long answer that no window of 24 tokens holds whole: every window is labelled CLS
    answer = " ".join(WORDS[20:32])
    feats = prepare_qa_features(_examples("where?", LONG, answer), tokenizer, 24, 4, for_evaluation=True)
    assert set(feats["start_positions"]) == {0} and set(feats["end_positions"]) == {0}


def test_unanswerable_question_is_labelled_cls_everywhere(tokenizer):
    feats = prepare_qa_features(_examples("where?", LONG), tokenizer, 32, 8, for_evaluation=False)
    assert set(feats["start_positions"]) == {0} and set(feats["end_positions"]) == {0}
    assert "offset_mapping" not in feats and "example_id" not in feats


def test_left_padding_puts_the_context_first_and_keeps_positions(tokenizer):
    left = tokenizer.__class__.from_pretrained(tokenizer.name_or_path, padding_side="left")
    context = "The first bicycle was built by Karl Drais in 1817 in Germany."
    feats = prepare_qa_features(_examples("Who built it?", context, "Karl Drais"), left, 48, 8,
                                for_evaluation=True)
    ids = feats["input_ids"][0]
    assert len(ids) == 48 and ids[0] == left.pad_token_id  # padded on the left, to the window size
    cls = feats["cls_index"][0]
    assert ids[cls] == left.cls_token_id and cls > 0
    assert _answer_text(feats, 0, context) == "Karl Drais"
    decoded = left.decode(ids[cls:], skip_special_tokens=False)
    assert decoded.index("bicycle") < decoded.index("who")  # context first, then the question
    # multi-window left-padded input: still labelled right wherever the answer is whole
    answer = "word40"
    feats = prepare_qa_features(_examples("where?", LONG, answer), left, 32, 8, for_evaluation=True)
    labelled = [i for i in range(len(feats["input_ids"])) if feats["start_positions"][i] != feats["cls_index"][i]]
    assert labelled and all(_answer_text(feats, i, LONG) == answer for i in labelled)


def test_question_too_long_for_the_window(tokenizer):
    question = "why " * 40
    with pytest.raises(ValueError, match=r"'q'.*too long.*max_seq_length=32"):
        prepare_qa_features(_examples(question, LONG), tokenizer, 32, 8, for_evaluation=True)


def test_bad_window_settings(tokenizer):
    with pytest.raises(ValueError, match="doc_stride"):
        prepare_qa_features(_examples("where?", LONG), tokenizer, 32, 32, for_evaluation=True)
