"""Question + context -> model windows: overflowing windows with a stride, offsets, start/end labels.

A context longer than ``max_seq_length`` becomes several overlapping windows (``doc_stride`` tokens shared by
neighbours). Each window is labelled with the token positions of the answer, or with the position of the
CLS token (the "null" position) when the example has no answer or the answer is not wholly inside the
window. Tokenizers that pad on the left get the context first and the question second, as in the Hugging Face
example, and are padded to ``max_seq_length`` here, so that no later padding moves the positions.

Evaluation windows also keep ``example_id``, ``cls_index`` and ``offset_mapping``: per token, its
``[start, end)`` character span in the context, or ``[-1, -1]`` for tokens outside the context (question,
special tokens, padding). Post-processing reads answers back through these offsets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

__all__ = ["NOT_CONTEXT", "QA_EVAL_COLUMNS", "check_window_settings", "prepare_qa_features", "tokenize_qa"]

logger = logging.getLogger(__name__)

#: Offset given to tokens outside the context.
NOT_CONTEXT = (-1, -1)
#: Columns of evaluation windows that the model does not take (the Trainer drops them before the forward pass).
QA_EVAL_COLUMNS = ("example_id", "offset_mapping", "cls_index")


def check_window_settings(max_seq_length: int, doc_stride: int) -> None:
    """Validate ``max_seq_length`` and ``doc_stride`` on their own.

    Raises:
        ValueError: A value is not positive, or the stride is not smaller than the window.
    """
    if max_seq_length < 8:
        raise ValueError(f"max_seq_length={max_seq_length!r} is too small for a question and a context; use at "
                         "least 64 (384 is the usual value).")
    if doc_stride < 0 or doc_stride >= max_seq_length:
        raise ValueError(f"doc_stride={doc_stride!r} must be at least 0 and smaller than max_seq_length="
                         f"{max_seq_length}; the usual value is 128 for max_seq_length 384.")


def _null_index(input_ids: Sequence[int], attention_mask: Sequence[int] | None, cls_token_id: int | None) -> int:
    """Position of the CLS token; without one, the first non-padding position."""
    if cls_token_id is not None:
        for i, token in enumerate(input_ids):
            if token == cls_token_id:
                return i
    if attention_mask is not None:
        for i, mask in enumerate(attention_mask):
            if mask:
                return i
    return 0


def _check_question_room(tokenizer: Any, questions: list[str], ids: Sequence[Any], max_seq_length: int,
                         doc_stride: int) -> None:
    """Each window must hold the whole question, the special tokens and more context than the stride."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    lengths = [len(ids_) for ids_ in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    room = [max_seq_length - specials - n for n in lengths]
    bad = [i for i, r in enumerate(room) if r <= doc_stride]
    if bad:
        worst = max(bad, key=lambda i: lengths[i])
        listed = ", ".join(repr(ids[i]) for i in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ValueError(
            f"Question(s) {listed} are too long for max_seq_length={max_seq_length} with doc_stride={doc_stride}: "
            f"the longest has {lengths[worst]} tokens, leaving {room[worst]} context tokens per window, which must "
            f"exceed the stride. Fix: raise --max_seq_length, lower --doc_stride, or shorten these questions."
        )


def _label_window(offsets: list[tuple[int, int]], sequence_ids: list[int | None], context_id: int,
                  answers: dict[str, list[Any]], null_index: int) -> tuple[int, int]:
    """Start/end token positions of the first gold answer in this window, or the null position twice."""
    if not answers["answer_start"]:
        return null_index, null_index
    start_char = int(answers["answer_start"][0])
    end_char = start_char + len(answers["text"][0])
    context = [i for i, s in enumerate(sequence_ids) if s == context_id]
    if not context or offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return null_index, null_index  # the answer is not wholly inside this window
    start_token = max(i for i in context if offsets[i][0] <= start_char)
    end_token = min(i for i in context if offsets[i][1] >= end_char)
    return start_token, end_token


def prepare_qa_features(examples: dict[str, list[Any]], tokenizer: Any, max_seq_length: int, doc_stride: int,
                        *, for_evaluation: bool, pad_to_max_length: bool = False) -> dict[str, list[Any]]:
    """Tokenise a batch of examples into windows (a ``datasets.map(batched=True)`` function).

    Args:
        examples: Columns ``id``, ``question``, ``context`` and ``answers`` (``{"text": [...],
            "answer_start": [...]}``, empty lists for no answer).
        tokenizer: A fast tokenizer (offsets are needed).
        max_seq_length: Tokens per window, special tokens included.
        doc_stride: Tokens shared by neighbouring windows of one context.
        for_evaluation: Also keep ``example_id``, ``cls_index`` and the context ``offset_mapping``.
        pad_to_max_length: Pad every window to ``max_seq_length`` (always done for left-padding tokenizers).

    Returns:
        One row per window: the tokenizer's columns, ``start_positions``, ``end_positions`` and, for
        evaluation, the columns above.

    Raises:
        ValueError: Not a fast tokenizer, bad window settings, or a question too long for a window.
    """
    check_window_settings(max_seq_length, doc_stride)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer; question answering needs the "
                         "character offsets that only fast tokenizers give. Fix: load it with use_fast=True.")
    pad_right = tokenizer.padding_side == "right"
    questions = [q.lstrip() for q in examples["question"]]
    _check_question_room(tokenizer, questions, examples["id"], max_seq_length, doc_stride)
    first, second = (questions, examples["context"]) if pad_right else (examples["context"], questions)
    encoded = tokenizer(
        first, second, truncation="only_second" if pad_right else "only_first", max_length=max_seq_length,
        stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True,
        # left padding: fixed positions, no later shift by the collator
        padding="max_length" if pad_to_max_length or not pad_right else False,
    )
    sample_map = encoded.pop("overflow_to_sample_mapping")
    offsets_all = encoded.pop("offset_mapping")
    context_id = 1 if pad_right else 0
    starts, ends, cls_indices, example_ids, context_offsets = [], [], [], [], []
    for i, offsets in enumerate(offsets_all):
        sequence_ids = encoded.sequence_ids(i)
        mask = encoded["attention_mask"][i] if "attention_mask" in encoded else None
        null = _null_index(encoded["input_ids"][i], mask, tokenizer.cls_token_id)
        example = sample_map[i]
        start, end = _label_window(offsets, sequence_ids, context_id, examples["answers"][example], null)
        starts.append(start)
        ends.append(end)
        if for_evaluation:
            cls_indices.append(null)
            example_ids.append(examples["id"][example])
            context_offsets.append([list(o) if s == context_id else list(NOT_CONTEXT)
                                    for o, s in zip(offsets, sequence_ids, strict=True)])
    out = {key: list(value) for key, value in encoded.items()}
    out["start_positions"], out["end_positions"] = starts, ends
    if for_evaluation:
        out["example_id"], out["cls_index"], out["offset_mapping"] = example_ids, cls_indices, context_offsets
    return out



def tokenize_qa(splits: Any, tokenizer: Any, max_seq_length: int, doc_stride: int,
                pad_to_max_length: bool = False) -> Any:
    """Tokenise every split into windows: training windows for ``train``, evaluation windows for the others.

    Args:
        splits: A ``datasets.DatasetDict`` of examples (see :func:`prepare_qa_features`).
        tokenizer: A fast tokenizer.
        max_seq_length: Tokens per window.
        doc_stride: Tokens shared by neighbouring windows.
        pad_to_max_length: Pad every window to ``max_seq_length``: the QA loss covers padding positions too, so
            only fixed-length windows give a loss independent of how rows are batched (and of the process count).

    Returns:
        A ``datasets.DatasetDict`` of windows with the same keys; every split has ``start_positions`` and
        ``end_positions`` (so evaluation reports a loss), the evaluation splits also :data:`QA_EVAL_COLUMNS`.
    """
    import datasets  # deferred: `import tlnlp.tasks` (which reads QA_EVAL_COLUMNS here) stays free of datasets

    result = {}
    for split, dataset in splits.items():
        evaluation = split != "train"
        result[split] = dataset.map(
            prepare_qa_features, batched=True, remove_columns=dataset.column_names,
            fn_kwargs={"tokenizer": tokenizer, "max_seq_length": max_seq_length, "doc_stride": doc_stride,
                       "for_evaluation": evaluation, "pad_to_max_length": pad_to_max_length},
            desc=f"Windows for {split}",
        )
    logger.info("QA windows (max_seq_length=%d, doc_stride=%d): %s", max_seq_length, doc_stride,
                {s: f"{len(splits[s])} examples -> {len(d)} windows" for s, d in result.items()})
    return datasets.DatasetDict(result)
