"""Rows of question-answering data -> checked examples: ids, questions, contexts and answers whose offsets hold.

An answer is ``{"text": [...], "answer_start": [...]}`` (lists of equal length; both empty for an unanswerable
question). Accepted cell shapes: that dict (lists may be arrays), the same as a JSON string (csv/tsv cells), or
SQuAD's list of ``{"text", "answer_start"}`` objects. ``context[answer_start:answer_start + len(text)]`` must
equal the text; rows where it does not are an error listing their ids, unless repair is asked for, which moves
each such start to the nearest occurrence of the text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from tlnlp.data.validation import DataError, RawSplit, Table, check_texts, resolve_column, short

__all__ = ["QAColumns", "check_qa_rows", "nearest_occurrence", "parse_answers"]

logger = logging.getLogger(__name__)

_MAX_IDS = 8
QAColumns = dict[str, str | None]


def _listed(ids: Sequence[Any]) -> str:
    shown = ", ".join(repr(str(i)) for i in ids[:_MAX_IDS])
    return shown + (f" and {len(ids) - _MAX_IDS} more" if len(ids) > _MAX_IDS else "")


def parse_answers(value: Any) -> dict[str, list[Any]] | None:
    """One answers cell -> ``{"text": [...], "answer_start": [...]}``, or None when its shape is not understood."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except json.JSONDecodeError:
            return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, dict) for v in value):
        value = {"text": [v.get("text") for v in value], "answer_start": [v.get("answer_start") for v in value]}
    if not isinstance(value, dict) or "text" not in value or "answer_start" not in value:
        return None
    texts, starts = value["text"], value["answer_start"]
    texts = texts.tolist() if hasattr(texts, "tolist") else texts
    starts = starts.tolist() if hasattr(starts, "tolist") else starts
    if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
        return None
    if not all(isinstance(t, str) and t for t in texts):
        return None
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in starts):
        if all(isinstance(s, float) and s.is_integer() and s >= 0 for s in starts):
            starts = [int(s) for s in starts]
        else:
            return None
    return {"text": list(texts), "answer_start": list(starts)}


def nearest_occurrence(context: str, text: str, start: int) -> int | None:
    """The start of the occurrence of ``text`` in ``context`` closest to ``start`` (None if it never occurs)."""
    best: int | None = None
    position = context.find(text)
    while position != -1:
        if best is None or abs(position - start) < abs(best - start):
            best = position
        position = context.find(text, position + 1)
    return best


def _ids(table: Table, split: str, column: str | None) -> list[str]:
    if column is None:
        logger.info("%s data (%s) has no id column; ids are %s-<row>.", split, table.source, split)
        return [f"{split}-{n}" for n in table.row_numbers]
    ids = [str(v) if v is not None else "" for v in table.columns[column]]
    seen: dict[str, int] = {}
    duplicates = []
    for qid in ids:
        seen[qid] = seen.get(qid, 0) + 1
        if seen[qid] == 2:
            duplicates.append(qid)
    if duplicates or "" in seen:
        problem = f"duplicate ids {_listed(duplicates)}" if duplicates else "empty ids"
        raise DataError(f"{split} data ({table.source}), column {column!r}: {problem}. Every question needs its own "
                        f"id (predictions.json is keyed by it). Fix: make the ids unique, or point --id_column at "
                        f"another column.")
    return ids


def _answers(table: Table, split: str, column: str, ids: list[str]) -> list[dict[str, list[Any]]]:
    parsed = [parse_answers(v) for v in table.columns[column]]
    bad = [i for i, a in enumerate(parsed) if a is None]
    if bad:
        raise DataError(
            f"{split} data ({table.source}), column {column!r}: answers of question(s) "
            f"{_listed([ids[i] for i in bad])} "
            f"are not {{\"text\": [...], \"answer_start\": [...]}} with equal-length lists of non-empty texts and "
            f"non-negative integer starts (value: {short(table.columns[column][bad[0]])}). Fix: use that shape "
            f"(empty lists for an unanswerable question), or point --answers_column at the right column."
        )
    return parsed  # type: ignore[return-value]


def _check_offsets(split: str, source: str, ids: list[str], contexts: list[str],
                   answers: list[dict[str, list[Any]]], repair: bool) -> int:
    """Check every answer_start against its text; repair in place when asked; returns how many were moved."""
    wrong = [(i, j) for i, a in enumerate(answers)
             for j, (text, start) in enumerate(zip(a["text"], a["answer_start"], strict=True))
             if contexts[i][start:start + len(text)] != text]
    if not wrong:
        return 0
    if not repair:
        i, j = wrong[0]
        found = contexts[i][answers[i]["answer_start"][j]:answers[i]["answer_start"][j] + len(answers[i]["text"][j])]
        raise DataError(
            f"{split} data ({source}): {len(wrong)} answer_start value(s) do not point at their answer text, in "
            f"question(s) {_listed(sorted({ids[i] for i, _ in wrong}))}. First: answer {answers[i]['text'][j]!r} at "
            f"answer_start={answers[i]['answer_start'][j]} reads {found!r}. Fix: correct the offsets, or add "
            f"--repair_answer_starts to move each to the nearest occurrence of its text."
        )
    absent = []
    for i, j in wrong:
        position = nearest_occurrence(contexts[i], answers[i]["text"][j], answers[i]["answer_start"][j])
        if position is None:
            absent.append(ids[i])
        else:
            answers[i]["answer_start"][j] = position
    if absent:
        raise DataError(f"{split} data ({source}): the answer text of question(s) {_listed(sorted(set(absent)))} does "
                        f"not occur in its context at all, so it cannot be repaired. Fix: correct the answer texts "
                        f"or the contexts.")
    logger.warning("%s data (%s): repaired %d answer_start value(s) to the nearest occurrence of their text.",
                   split, source, len(wrong))
    return len(wrong)


def check_qa_rows(table: Table, split: str, columns: QAColumns, repair: bool) -> tuple[dict[str, list[Any]], int]:
    """Map a table's columns to ``id``, ``question``, ``context``, ``answers`` and check every row.

    Args:
        table: Rows read from a file or the Hub.
        split: Split name, for messages.
        columns: Column names chosen by the user (``id``, ``question``, ``context``, ``answers``; None: default).
        repair: Move wrong answer_starts to the nearest occurrence of their text instead of failing.

    Returns:
        The canonical columns and the number of answer_starts repaired.

    Raises:
        DataError: A column is missing, a question or context is empty, ids repeat, an answers cell has the
            wrong shape, or an answer_start does not point at its text (without ``repair``).
    """
    id_col = resolve_column(table, split, columns.get("id"), ("id",), "--id_column", required=False)
    q_col = resolve_column(table, split, columns.get("question"), ("question",), "--question_column")
    c_col = resolve_column(table, split, columns.get("context"), ("context",), "--context_column")
    a_col = resolve_column(table, split, columns.get("answers"), ("answers",), "--answers_column")
    assert q_col is not None and c_col is not None and a_col is not None
    raw = RawSplit(split=split, table=table, text=[], labels=[])
    questions = check_texts(raw, table.columns[q_col], q_col)
    contexts = check_texts(raw, table.columns[c_col], c_col)
    ids = _ids(table, split, id_col)
    answers = _answers(table, split, a_col, ids)
    repaired = _check_offsets(split, table.source, ids, contexts, answers, repair)
    out: dict[str, list[Any]] = {"id": ids, "question": questions, "context": contexts, "answers": answers}
    if "title" in table.columns:
        out["title"] = ["" if t is None else str(t) for t in table.columns["title"]]
    return out, repaired
