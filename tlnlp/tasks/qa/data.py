"""Question-answering data: SQuAD v1.1/v2.0 from the Hub, nested SQuAD JSON, flat files, or ``bundled:qa_tlnlp``.

Every split has the columns ``id``, ``title``, ``question``, ``context`` and ``answers`` (``{"text": [...],
"answer_start": [...]}``, empty for an unanswerable question), checked row by row (see
:mod:`tlnlp.tasks.qa.checks`). When only training data is given, validation (and test) questions are held out
by passage, so that no context appears in two splits.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from tlnlp.assets import BUNDLED_PREFIX
from tlnlp.config.args import DataArgs
from tlnlp.config.qa_args import QAArgs
from tlnlp.data.bundled import QA_CORPORA, bundled_corpus
from tlnlp.data.files import read_table
from tlnlp.data.hub import load_hub_tables
from tlnlp.data.splits import seeded_subset
from tlnlp.data.validation import DataError, Table
from tlnlp.tasks.qa.checks import check_qa_rows

__all__ = ["QAData", "load_qa_data", "qa_fingerprint", "read_squad_json", "split_by_passage"]

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
_FEATURES = datasets.Features({
    "id": datasets.Value("string"), "title": datasets.Value("string"), "question": datasets.Value("string"),
    "context": datasets.Value("string"),
    "answers": {"text": datasets.List(datasets.Value("string")),
                "answer_start": datasets.List(datasets.Value("int32"))},
})
_IGNORED_FLAGS = ("text_column", "text_pair_column", "label_column", "label_separator", "train_samples_per_class")


@dataclass
class QAData:
    """Checked question-answering examples.

    Attributes:
        splits: ``train`` and, when available, ``validation`` and ``test`` (columns ``id``, ``title``,
            ``question``, ``context``, ``answers``).
        name: Where the data comes from.
        fingerprint: sha256 over every row of every split (see :func:`qa_fingerprint`).
        version: Dataset version, for bundled data.
        license: Licence, when known.
        description: One line about the data.
        hub_dataset_id: Hub dataset name, when from the Hub.
        repaired: How many answer_starts were repaired (``--repair_answer_starts``).
    """

    splits: datasets.DatasetDict
    name: str
    fingerprint: str = ""
    version: str | None = None
    license: str | None = None
    description: str | None = None
    hub_dataset_id: str | None = None
    repaired: int = 0

    def unanswerable(self, split: str) -> int:
        """Number of questions without an answer in ``split``."""
        return sum(1 for a in self.splits[split]["answers"] if not a["text"])


def read_squad_json(data: dict[str, Any], split: str, source: str) -> Table:
    """Flatten SQuAD's nested ``{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}`` into rows.

    ``is_impossible: true`` questions get empty answers (their ``plausible_answers`` are ignored). Row numbers
    count questions in file order.

    Raises:
        DataError: The structure is not SQuAD's (the message names the article and paragraph).
    """
    columns: dict[str, list[Any]] = {"id": [], "title": [], "question": [], "context": [], "answers": []}
    for a, article in enumerate(data.get("data") or []):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"{split} data ({source}): article {a} has no 'paragraphs' list. Fix: follow the "
                            "SQuAD layout {\"data\": [{\"title\": ..., \"paragraphs\": [{\"context\": ..., "
                            "\"qas\": [...]}]}]}.")
        for p, paragraph in enumerate(paragraphs):
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
                raise DataError(f"{split} data ({source}): article {a}, paragraph {p} has no 'qas' list. Fix: give "
                                "each paragraph a 'context' and a 'qas' list.")
            for qa in paragraph["qas"]:
                impossible = bool(qa.get("is_impossible", False))
                columns["id"].append(qa.get("id"))
                columns["title"].append(article.get("title", ""))
                columns["question"].append(qa.get("question"))
                columns["context"].append(paragraph.get("context"))
                columns["answers"].append([] if impossible else qa.get("answers", []))
    return Table(columns=columns, row_numbers=list(range(1, len(columns["id"]) + 1)), unit="question",
                 source=source)


def _read_file(path: str, split: str) -> Table:
    file = Path(path)
    if file.suffix.lower() == ".json" and file.is_file():
        try:
            whole = json.loads(file.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            whole = None  # JSON lines, or broken: read_table reports it precisely
        if isinstance(whole, dict) and isinstance(whole.get("data"), list):
            return read_squad_json(whole, split, file.name)
    return read_table(path, split)


def split_by_passage(contexts: list[str], fractions: dict[str, float], seed: int) -> dict[str, list[int]]:
    """Hold out whole passages: row indices per split (``train`` included), no context in two splits.

    Distinct contexts are shuffled with ``seed`` and cut in the order of ``fractions``; each held-out split
    gets ``round(passages * fraction)`` passages (at least one, while one remains for training).
    """
    passages = list(dict.fromkeys(contexts))
    order = [passages[i] for i in np.random.default_rng(seed & 0xFFFFFFFF).permutation(len(passages))]
    assigned: dict[str, str] = {}
    position = 0
    for split, fraction in fractions.items():
        count = max(1, round(len(passages) * fraction))
        count = min(count, len(passages) - position - 1)
        for passage in order[position:position + max(count, 0)]:
            assigned[passage] = split
        position += max(count, 0)
    result: dict[str, list[int]] = {"train": [], **{s: [] for s in fractions}}
    for i, context in enumerate(contexts):
        result[assigned.get(context, "train")].append(i)
    return result


def _dataset(columns: dict[str, list[Any]], rows: list[int] | None = None) -> datasets.Dataset:
    pick = range(len(columns["id"])) if rows is None else rows
    out = {key: [columns[key][i] for i in pick] for key in ("id", "question", "context", "answers")}
    out["title"] = [columns["title"][i] for i in pick] if "title" in columns else [""] * len(out["id"])
    return datasets.Dataset.from_dict(out, features=_FEATURES)


def _checked(tables: dict[str, Table], qa_args: QAArgs, data_args: DataArgs,
             seed: int) -> tuple[datasets.DatasetDict, int]:
    columns = {"id": qa_args.id_column, "question": qa_args.question_column, "context": qa_args.context_column,
               "answers": qa_args.answers_column}
    checked, repaired = {}, 0
    for split, table in tables.items():
        checked[split], moved = check_qa_rows(table, split, columns, qa_args.repair_answer_starts)
        repaired += moved
    fractions = {}
    if "validation" not in checked and data_args.validation_split_percentage > 0:
        fractions["validation"] = data_args.validation_split_percentage / 100
    if set(checked) == {"train"} and data_args.test_split_percentage > 0:
        fractions["test"] = data_args.test_split_percentage / 100
    parts = {s: _dataset(c) for s, c in checked.items() if s != "train"}
    if fractions:
        chosen = split_by_passage(checked["train"]["context"], fractions, seed)
        parts.update({s: _dataset(checked["train"], rows) for s, rows in chosen.items()})
        logger.info("Held out by passage (seed %d): %s", seed, {s: len(r) for s, r in chosen.items()})
    else:
        parts["train"] = _dataset(checked["train"])
    return datasets.DatasetDict({s: parts[s] for s in SPLITS if s in parts}), repaired


def qa_fingerprint(splits: datasets.DatasetDict) -> str:
    """sha256 hex over every row (id, question, context, answers) of every split, in order."""
    digest = hashlib.sha256()
    for split in [s for s in SPLITS if s in splits]:
        digest.update(f"\n#{split}\n".encode())
        for row in splits[split]:
            item = [row["id"], row["question"], row["context"], row["answers"]["text"], row["answers"]["answer_start"]]
            digest.update(json.dumps(item, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _source_tables(data_args: DataArgs) -> tuple[dict[str, Table], dict[str, Any]]:
    """Read the tables of the source ``data_args`` names, with what describes it."""
    name = data_args.dataset_name
    if name is not None and name.startswith(BUNDLED_PREFIX):
        corpus = bundled_corpus(QA_CORPORA, name[len(BUNDLED_PREFIX):])
        if data_args.validation_file or data_args.test_file:
            logger.warning("%s has fixed splits; ignoring --validation_file/--test_file.", name)
        tables = {s: _read_file(str(p), s) for s, p in corpus.files().items()}
        return tables, {"name": name, "version": corpus.version, "license": corpus.license,
                        "description": corpus.description}
    if name is not None:
        if data_args.validation_file or data_args.test_file:
            raise DataError(f"--validation_file/--test_file are used only with --train_file, not with "
                            f"--dataset_name {name}. Fix: give either --dataset_name or --train_file "
                            "[--validation_file] [--test_file].")
        tables, _ = load_hub_tables(name, data_args.dataset_config_name, "answers", QA_CORPORA.names())
        local = Path(name).exists()
        return tables, {"name": name, "description": f"Hub dataset {name}", "hub_dataset_id": None if local else name}
    files = {"train": data_args.train_file, "validation": data_args.validation_file, "test": data_args.test_file}
    tables = {s: _read_file(str(p), s) for s, p in files.items() if p is not None}
    described = ", ".join(f"{s}={Path(p).name}" for s, p in files.items() if p is not None)
    return tables, {"name": Path(str(data_args.train_file)).name, "description": f"Local data files: {described}"}


def load_qa_data(data_args: DataArgs, qa_args: QAArgs, seed: int | None = None) -> QAData:
    """Load, check and split question-answering data.

    Sources: ``bundled:qa_tlnlp`` (fixed splits), a Hub dataset (``squad``, ``squad_v2``; online), or local
    files (``--train_file`` [``--validation_file``] [``--test_file``]) in nested SQuAD JSON or flat
    csv/tsv/json/jsonl/parquet with ``id``, ``question``, ``context`` and ``answers`` columns (renamed with
    ``--id_column``, ``--question_column``, ``--context_column``, ``--answers_column``). Then
    ``max_train_samples`` / ``max_eval_samples`` / ``max_predict_samples`` keep the first N questions of a
    seeded shuffle.

    Args:
        data_args: The source and sample sizes.
        qa_args: Column names, ``repair_answer_starts`` and ``version_2_with_negative``.
        seed: Seed of held-out splits and samples (default ``data_args.split_seed``).

    Returns:
        The checked splits and their provenance.

    Raises:
        DataError: Any problem with the source or its rows, or unanswerable questions without
            ``--version_2_with_negative``.
    """
    seed = data_args.split_seed if seed is None else seed
    ignored = [f"--{f}" for f in _IGNORED_FLAGS if getattr(data_args, f) is not None]
    if ignored:
        raise DataError(f"{', '.join(ignored)} do not apply to question answering. Fix: remove them; name the QA "
                        "columns with --question_column, --context_column, --answers_column and --id_column.")
    tables, info = _source_tables(data_args)
    splits, repaired = _checked(tables, qa_args, data_args, seed)
    limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples,
              "test": data_args.max_predict_samples}
    splits = datasets.DatasetDict({s: seeded_subset(d, limits[s], seed) for s, d in splits.items()})
    data = QAData(splits=splits, repaired=repaired, **info)
    data.fingerprint = qa_fingerprint(splits)
    unanswerable = {s: data.unanswerable(s) for s in splits}
    if any(unanswerable.values()) and not qa_args.version_2_with_negative:
        counts = ", ".join(f"{n} in {s}" for s, n in unanswerable.items() if n)
        raise DataError(f"{data.name} has questions without an answer ({counts}), but version_2_with_negative is off, "
                        "so they could never be answered correctly. Fix: add --version_2_with_negative (SQuAD v2).")
    logger.info("Loaded %s: %s questions (%s unanswerable), fingerprint %s", data.name,
                {s: len(d) for s, d in splits.items()}, unanswerable, data.fingerprint[:12])
    return data
