"""Start/end logits of every window -> one answer per question, its n-best list and (SQuAD v2) null odds.

The rules, applied to every example (a question and its context):

1. A candidate span is a pair of token positions ``start <= end`` in one window, both inside the context,
   at most ``max_answer_length`` tokens long, whose character span is not empty. Its score is
   ``start_logit[start] + end_logit[end]``. Every valid pair is considered (not only the pairs of the top-k
   starts and top-k ends), so a valid span is never missed.
2. Each window keeps its ``n_best_size`` best candidates. The candidates of all windows of the example are
   merged; a character span found in several windows keeps its best score; the ``n_best_size`` best remain,
   ordered by score (ties: window, start, end).
3. The null score of a window is ``start_logit[cls] + end_logit[cls]``; the example's null score is the
   smallest over its windows. With ``version_2_with_negative``, the answer is ``""`` when
   ``null_score - best_span_score > null_score_diff_threshold`` (and the difference is reported as the
   question's null odds); otherwise it is the best span's text.
4. Without ``version_2_with_negative`` the answer is always the best span; an example with no valid span at
   all (no context tokens in any window) gets ``""`` and is counted and logged, never silently dropped.

The scoring is vectorised with NumPy over windows and spans; only the final per-question lists are built in
Python.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["QAPredictions", "postprocess_qa_predictions", "write_qa_predictions"]

logger = logging.getLogger(__name__)

_CHUNK_ELEMENTS = 4_000_000  # windows are scored in chunks of about this many (window, start, length) cells


@dataclass
class QAPredictions:
    """Answers of one split.

    Attributes:
        predictions: Question id -> answer text (``""`` for no answer); what ``predictions.json`` holds.
        nbest: Question id -> candidates, best first: ``text``, ``probability`` (softmax over the list),
            ``score``, ``start_logit``, ``end_logit``, ``answer_start`` (character offset; None for the null
            entry, which is listed for SQuAD v2).
        span_predictions: Question id -> best non-null span text (``""`` when there is none).
        null_odds: SQuAD v2: question id -> null score minus best span score (None: no span at all).
        no_span: Ids of questions with no valid span in any window.
    """

    predictions: dict[str, str]
    nbest: dict[str, list[dict[str, Any]]]
    span_predictions: dict[str, str]
    null_odds: dict[str, float | None] | None = None
    no_span: list[str] = field(default_factory=list)


def _column(table: Any, name: str) -> list[Any]:
    return list(table[name])


def _offset_arrays(features: Any, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``offset_mapping`` as two ``(windows, width)`` arrays of character starts and ends (-1 outside context)."""
    if hasattr(features, "data") and hasattr(features.data, "column"):  # a datasets.Dataset: read Arrow directly
        import pyarrow.compute as pc  # deferred: only Arrow-backed datasets take this path

        column = features.data.column("offset_mapping").combine_chunks()
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        flat = np.asarray(column.flatten().flatten().to_numpy(zero_copy_only=False), dtype=np.int64)
    else:
        rows = features["offset_mapping"]
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        flat = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(rows)), dtype=np.int64)
    if lengths.size and lengths.max() > width:
        raise ValueError(f"Windows have up to {int(lengths.max())} tokens but the logits only {width} positions; "
                         "pass the logits of these very windows, in their order.")
    pairs = flat.reshape(-1, 2)
    starts = np.full((len(lengths), width), -1, dtype=np.int64)
    ends = np.full((len(lengths), width), -1, dtype=np.int64)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    cols = np.arange(len(pairs)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    starts[rows, cols] = pairs[:, 0]
    ends[rows, cols] = pairs[:, 1]
    return starts, ends


def _chunk_candidates(start: np.ndarray, end: np.ndarray, off_s: np.ndarray, off_e: np.ndarray, n_best: int,
                      max_len: int) -> tuple[np.ndarray, ...]:
    """The ``n_best`` best valid spans of each window of a chunk: (window, start, end, score), flat arrays."""
    windows, width = start.shape
    inside = off_s >= 0
    s_score = np.where(inside, start, -np.inf)
    e_score = np.where(inside, end, -np.inf)
    pad = max_len - 1
    e_win = np.lib.stride_tricks.sliding_window_view(
        np.pad(e_score, ((0, 0), (0, pad)), constant_values=-np.inf), max_len, axis=1)
    end_chars = np.lib.stride_tricks.sliding_window_view(
        np.pad(off_e, ((0, 0), (0, pad)), constant_values=-1), max_len, axis=1)
    scores = s_score[:, :, None] + e_win  # [window, start, length - 1]
    scores = np.where(end_chars > off_s[:, :, None], scores, -np.inf)
    # a span among a window's n best has its start among the n starts whose best span scores highest (else n
    # better spans, one per better start, would exist): search those starts only
    k_start = min(n_best, width)
    best_per_start = scores.max(axis=2)
    starts = np.argpartition(-best_per_start, k_start - 1, axis=1)[:, :k_start]  # [window, k_start]
    local = np.take_along_axis(scores, starts[:, :, None], axis=1).reshape(windows, -1)  # [window, k_start * len]
    k = min(n_best, local.shape[1])
    top = np.argpartition(-local, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(local, top, axis=1).reshape(-1)
    which, length = np.divmod(top, max_len)
    first = np.take_along_axis(starts, which, axis=1).reshape(-1)
    window = np.repeat(np.arange(windows), k)
    keep = np.isfinite(values)
    first, length = first[keep], length.reshape(-1)[keep]
    return window[keep], first, first + length, values[keep]


def _all_candidates(start_logits: np.ndarray, end_logits: np.ndarray, off_s: np.ndarray, off_e: np.ndarray,
                    n_best: int, max_len: int) -> tuple[np.ndarray, ...]:
    windows, width = start_logits.shape
    step = max(1, _CHUNK_ELEMENTS // max(1, width * max_len))
    parts = []
    for lo in range(0, windows, step):
        hi = min(windows, lo + step)
        w, s, e, score = _chunk_candidates(start_logits[lo:hi], end_logits[lo:hi], off_s[lo:hi], off_e[lo:hi],
                                           n_best, max_len)
        parts.append((w + lo, s, e, score))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))


def _merge(example_of_window: np.ndarray, cands: tuple[np.ndarray, ...], off_s: np.ndarray, off_e: np.ndarray,
           n_best: int) -> tuple[np.ndarray, ...]:
    """Order candidates per example, keep each character span once (best first) and the n_best best."""
    window, first, last, score = cands
    example = example_of_window[window]
    char_s, char_e = off_s[window, first], off_e[window, last]
    order = np.lexsort((last, first, window, -score, example))
    example, window, first, last, score = example[order], window[order], first[order], last[order], score[order]
    char_s, char_e = char_s[order], char_e[order]
    base = int(max(char_e.max(initial=0), char_s.max(initial=0))) + 2
    keys = (example * base + (char_s + 1)) * base + (char_e + 1)  # one integer per (example, character span)
    _, unique_first = np.unique(keys, return_index=True)
    kept = np.sort(unique_first)
    example, window, first, last, score = example[kept], window[kept], first[kept], last[kept], score[kept]
    char_s, char_e = char_s[kept], char_e[kept]
    group_start = np.searchsorted(example, example, side="left")
    rank = np.arange(len(example)) - group_start
    top = rank < n_best
    return example[top], window[top], first[top], last[top], score[top], char_s[top], char_e[top]


def _null_per_example(example_of_window: np.ndarray, start: np.ndarray, end: np.ndarray, cls_index: np.ndarray,
                      n_examples: int) -> tuple[np.ndarray, np.ndarray]:
    """The smallest null score of each example and the window it comes from."""
    rows = np.arange(len(cls_index))
    null = start[rows, cls_index].astype(np.float64) + end[rows, cls_index]
    order = np.lexsort((rows, null, example_of_window))
    first = np.searchsorted(example_of_window[order], np.arange(n_examples), side="left")
    window = order[np.minimum(first, len(order) - 1)]
    return null[window], window


def _softmax(values: list[float]) -> list[float]:
    array = np.asarray(values, dtype=np.float64)
    exp = np.exp(array - array.max())
    return (exp / exp.sum()).tolist()


def postprocess_qa_predictions(examples: Any, features: Any, start_logits: np.ndarray, end_logits: np.ndarray, *,
                               version_2_with_negative: bool = False, n_best_size: int = 20,
                               max_answer_length: int = 30, null_score_diff_threshold: float = 0.0) -> QAPredictions:
    """Turn the logits of every window into answers by the rules in this module's docstring.

    Args:
        examples: The examples (a ``datasets.Dataset`` or a dict of lists) with ``id`` and ``context``.
        features: Their evaluation windows, with ``example_id``, ``cls_index`` and ``offset_mapping`` (see
            :func:`~tlnlp.tasks.qa.features.prepare_qa_features`).
        start_logits: ``(windows, positions)`` start logits, in the windows' order (extra positions, e.g. the
            Trainer's -100 padding, are ignored).
        end_logits: End logits, same shape.
        version_2_with_negative: Questions may have no answer (SQuAD v2).
        n_best_size: Candidates kept per window and per question.
        max_answer_length: Longest answer, in tokens.
        null_score_diff_threshold: SQuAD v2: answer ``""`` when the null score exceeds the best span's score by
            more than this.

    Returns:
        The answers, n-best lists and null odds.

    Raises:
        ValueError: Bad sizes, or logits that do not match the windows.
    """
    if n_best_size < 1 or max_answer_length < 1:
        raise ValueError(f"n_best_size={n_best_size!r} and max_answer_length={max_answer_length!r} must be "
                         "positive numbers.")
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    ids, contexts = _column(examples, "id"), _column(examples, "context")
    window_ids = _column(features, "example_id")
    if start_logits.shape != end_logits.shape or start_logits.shape[0] != len(window_ids):
        raise ValueError(f"Logits of shapes {start_logits.shape} and {end_logits.shape} do not match "
                         f"{len(window_ids)} windows.")
    position = {qid: i for i, qid in enumerate(ids)}
    unknown = sorted({w for w in window_ids if w not in position})
    if unknown:
        raise ValueError(f"Windows refer to {len(unknown)} unknown example id(s), e.g. {unknown[:3]}.")
    example_of_window = np.asarray([position[w] for w in window_ids], dtype=np.int64)
    orphans = len(ids) - len(np.unique(example_of_window))
    if orphans:
        raise ValueError(f"{orphans} example(s) have no window; pass the windows made from these very examples.")
    off_s, off_e = _offset_arrays(features, start_logits.shape[1])
    cands = _all_candidates(start_logits.astype(np.float64), end_logits.astype(np.float64), off_s, off_e,
                            n_best_size, max_answer_length)
    example, window, first, last, score, char_s, char_e = _merge(example_of_window, cands, off_s, off_e, n_best_size)
    cls_index = np.asarray(_column(features, "cls_index"), dtype=np.int64)
    null, null_window = _null_per_example(example_of_window, start_logits, end_logits, cls_index, len(ids))
    null_cls = cls_index[null_window]
    null_logits = np.stack([start_logits[null_window, null_cls], end_logits[null_window, null_cls]], axis=1)
    bounds = np.searchsorted(example, np.arange(len(ids) + 1), side="left")
    result = QAPredictions(predictions={}, nbest={}, span_predictions={},
                           null_odds={} if version_2_with_negative else None)
    for i, qid in enumerate(ids):
        entries = [{"text": contexts[i][char_s[j]:char_e[j]], "score": float(score[j]),
                    "start_logit": float(start_logits[window[j], first[j]]),
                    "end_logit": float(end_logits[window[j], last[j]]), "answer_start": int(char_s[j])}
                   for j in range(bounds[i], bounds[i + 1])]
        null_entry = None
        if version_2_with_negative:
            null_entry = {"text": "", "score": float(null[i]), "start_logit": float(null_logits[i, 0]),
                          "end_logit": float(null_logits[i, 1]), "answer_start": None}
        _finish_example(result, qid, entries, null_entry, null_score_diff_threshold)
    if result.no_span:
        logger.warning("%d question(s) have no valid answer span in any window (no context tokens?): %s%s; "
                       "they are answered with \"\".", len(result.no_span), result.no_span[:5],
                       " ..." if len(result.no_span) > 5 else "")
    return result


def _finish_example(result: QAPredictions, qid: str, entries: list[dict[str, Any]],
                    null_entry: dict[str, Any] | None, threshold: float) -> None:
    """Pick the answer of one question (rules 3 and 4) and attach probabilities to its n-best list."""
    best = entries[0] if entries else None
    if best is None:
        result.no_span.append(qid)
    answer = best["text"] if best else ""
    result.span_predictions[qid] = answer
    if null_entry is not None:
        entries = sorted(entries + [null_entry], key=lambda e: -e["score"])
        diff = null_entry["score"] - best["score"] if best else None
        result.null_odds[qid] = diff  # type: ignore[index]
        if diff is None or diff > threshold:
            answer = ""
    if entries:
        for entry, probability in zip(entries, _softmax([e["score"] for e in entries]), strict=True):
            entry["probability"] = probability
    result.nbest[qid] = entries
    result.predictions[qid] = answer


def write_qa_predictions(output_dir: str | Path, predictions: QAPredictions, prefix: str = "") -> list[Path]:
    """Write ``{prefix}predictions.json``, ``{prefix}nbest_predictions.json`` and (v2) ``{prefix}null_odds.json``.

    Args:
        output_dir: Folder to write into (created if needed).
        predictions: The answers from :func:`postprocess_qa_predictions`.
        prefix: File-name prefix, e.g. ``"test_"``.

    Returns:
        The paths written.
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = {f"{prefix}predictions.json": predictions.predictions,
             f"{prefix}nbest_predictions.json": predictions.nbest}
    if predictions.null_odds is not None:
        files[f"{prefix}null_odds.json"] = predictions.null_odds
    written = []
    for name, content in files.items():
        path = folder / name
        tmp = path.with_name(name + ".tmp")
        tmp.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
