"""Label-entailment training data (Yin et al. 2019): classification examples -> (text, hypothesis) pairs.

Each example gives one entailment pair with its gold label's hypothesis (``"This example is sports."``) and
``num_negatives`` not-entailment pairs with other labels' hypotheses, sampled without the gold label. A
cross-encoder trained on such pairs from a few datasets then scores labels it never saw, like an NLI model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from tlnlp.config import DataArgs
from tlnlp.tasks import load_task_data
from tlnlp.tasks.classification.data import TaskData, data_fingerprint
from tlnlp.zeroshot.args import ENTAILMENT_LABELS, EntailmentArgs, ZeroShotError
from tlnlp.zeroshot.specs import resolve_spec

__all__ = [
    "build_entailment_pairs",
    "entailment_task_data",
    "is_entailment_model",
    "load_source",
    "source_data_args",
]

logger = logging.getLogger(__name__)

_FILE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
_ENTAIL, _NOT_ENTAIL = 0, 1


def _gold_set(label: int | Sequence[int]) -> set[int]:
    return {int(label)} if isinstance(label, (int, np.integer)) else {int(x) for x in label}


def build_entailment_pairs(
    texts: Sequence[str],
    labels: Sequence[int | Sequence[int]],
    hypotheses: Sequence[Sequence[str]],
    *,
    num_negatives: int = 1,
    seed: int = 0,
) -> dict[str, list[Any]]:
    """Turn labelled examples into entailment / not-entailment pairs.

    Args:
        texts: The examples' texts (premises).
        labels: Each example's class id, or list of class ids (multi-label: every gold label is entailed).
        hypotheses: One list per template of one hypothesis per class (``ZeroShotSpec.hypotheses``); each pair
            takes a template at random when there are several.
        num_negatives: Not-entailment pairs per example, each with a different non-gold class; -1 (or more
            than there are): every non-gold class.
        seed: Seed of the negative and template sampling.

    Returns:
        Columns ``text``, ``text_pair`` (the hypothesis) and ``label`` (0 = entailment, 1 = not_entailment),
        the example's pairs next to each other, its entailment pair first.

    Raises:
        ValueError: Lengths differ, a class id has no hypothesis, or ``num_negatives`` is 0 or below -1.
    """
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels; give one label per text.")
    if num_negatives == 0 or num_negatives < -1:
        raise ValueError(f"num_negatives={num_negatives!r} must be positive, or -1 for every wrong label.")
    if not hypotheses or len({len(h) for h in hypotheses}) != 1:
        raise ValueError("hypotheses must be one non-empty list per template, all of the same length (classes).")
    num_classes = len(hypotheses[0])
    rng = np.random.default_rng(seed)
    out: dict[str, list[Any]] = {"text": [], "text_pair": [], "label": []}

    def add(text: str, cls: int, label: int) -> None:
        template = int(rng.integers(len(hypotheses))) if len(hypotheses) > 1 else 0
        out["text"].append(text)
        out["text_pair"].append(hypotheses[template][cls])
        out["label"].append(label)

    for row, (text, label) in enumerate(zip(texts, labels, strict=True)):
        gold = _gold_set(label)
        if not gold or max(gold) >= num_classes or min(gold) < 0:
            raise ValueError(f"Row {row}: label {label!r} has no hypothesis; class ids must be in "
                             f"0..{num_classes - 1}.")
        others = np.array(sorted(set(range(num_classes)) - gold), dtype=np.int64)
        take = len(others) if num_negatives == -1 else min(num_negatives, len(others))
        for cls in sorted(gold):
            add(text, cls, _ENTAIL)
        for cls in rng.choice(others, size=take, replace=False) if take else []:
            add(text, int(cls), _NOT_ENTAIL)
    return out


def source_data_args(source: str, *, max_train: int | None = None, max_eval: int | None = None,
                     seed: int = 42) -> Any:
    """``DataArgs`` for a source string: a local data file (by its suffix), else a dataset name."""
    limits = {"max_train_samples": max_train, "max_eval_samples": max_eval, "max_predict_samples": max_eval,
              "split_seed": seed}
    if source.lower().endswith(_FILE_SUFFIXES):
        return DataArgs(train_file=source, **limits)
    return DataArgs(dataset_name=source, **limits)


def load_source(source: str, **kwargs: Any) -> Any:
    """Load one source as classification ``TaskData`` (see :func:`source_data_args` for the arguments)."""
    data = load_task_data(source_data_args(source, **kwargs), task="classification")
    if data.has_text_pair:
        raise ZeroShotError(f"{source} holds text pairs; label-entailment training needs single-text "
                            "classification data.")
    return data


def _describe_source(source: str, data: Any, spec: Any, counts: dict[str, int]) -> dict[str, Any]:
    return {"source": source, "name": data.name, "version": data.version, "fingerprint": data.fingerprint,
            "labels": data.labels, "spec": spec.name, "spec_version": spec.version,
            "hypotheses": spec.hypotheses(data.labels)[0], "pairs": counts}


def entailment_task_data(args: EntailmentArgs) -> tuple[Any, list[dict[str, Any]]]:
    """Load every source of ``args.train_datasets`` and build their entailment pairs, split by split.

    The pairs of a source's train / validation / test splits come from that split only, so no text is in two
    splits. Each source's label descriptions come from its spec (``spec_file`` first, then the built-ins).

    Returns:
        A classification ``TaskData`` of pairs (labels ``entailment`` / ``not_entailment``), and one record per
        source (name, version, labels, spec and version, hypotheses, pair counts) for the run's results.
    """
    max_eval = None if args.max_samples_per_dataset is None else max(1, args.max_samples_per_dataset // 8)
    columns: dict[str, dict[str, list[Any]]] = {}
    records, licences = [], []
    templates = [args.hypothesis_template] if args.hypothesis_template else None
    for index, source in enumerate(args.train_datasets):
        data = load_source(source, max_train=args.max_samples_per_dataset, max_eval=max_eval,
                           seed=args.split_seed)
        spec = resolve_spec("auto", data.name, "nli", args.spec_file, templates)
        counts = {}
        for split_index, (split, rows) in enumerate(data.splits.items()):
            pairs = build_entailment_pairs(rows["text"], rows["label"], spec.hypotheses(data.labels),
                                           num_negatives=args.num_negatives,
                                           seed=args.split_seed + 1000 * index + split_index)
            target = columns.setdefault(split, {"text": [], "text_pair": [], "label": []})
            for key, values in pairs.items():
                target[key].extend(values)
            counts[split] = len(pairs["label"])
        records.append(_describe_source(source, data, spec, counts))
        licences.append(f"{data.name}: {data.license or 'see the source'}")
    features = datasets.Features({"text": datasets.Value("string"), "text_pair": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=list(ENTAILMENT_LABELS))})
    splits = datasets.DatasetDict({s: datasets.Dataset.from_dict(c, features=features) for s, c in columns.items()})
    name = " + ".join(r["name"] for r in records)
    task = TaskData(splits=splits, labels=list(ENTAILMENT_LABELS), multi_label=False,
                    name=f"label entailment ({name})", fingerprint=data_fingerprint(splits, list(ENTAILMENT_LABELS),
                                                                                    False),
                    license="; ".join(licences),
                    description=f"(text, hypothesis) pairs from {name}: the gold label's hypothesis entailed, "
                                f"{args.num_negatives} other label(s) per example not (-1: all)")
    logger.info("Entailment pairs: %s", {s: len(d) for s, d in splits.items()})
    return task, records


def is_entailment_model(folder: str | Path) -> bool:
    """Whether ``folder`` holds a saved model whose config names an entailment class."""
    config = Path(folder) / "config.json"
    if not config.is_file():
        return False
    label2id = json.loads(config.read_text(encoding="utf-8")).get("label2id") or {}
    return any(str(name).lower().startswith("entail") for name in label2id)
