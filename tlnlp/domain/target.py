"""The unlabelled target: training texts, held-out texts (A-distance) and, when it has labels, its scored splits.

* ``--target_dataset bundled:<corpus>`` or a Hub dataset: the texts of its training split (labels ignored); its
  validation split (or ``--validation_split_percentage`` of its texts) is held out for the A-distance. When it
  has labels that the source has too, its test split is scored, and so is its validation split when it has one
  (``--max_eval_samples`` rows of it, as of the source's; its labels reach no training step: a hyperparameter
  search alone chooses settings by the validation score).
* ``--target_text_file``: a ``.txt`` file (one text per line) or a table file (``--target_text_column``);
  ``--validation_split_percentage`` of its texts is held out.

Target texts that are also in the target's labelled test or validation split are dropped from the training texts,
so the scored rows stay unseen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import datasets

from tlnlp.config import DataArgs
from tlnlp.data import DataError, load_text_data
from tlnlp.domain.args import MIN_A_DISTANCE_ROWS, DomainArgs
from tlnlp.tasks.classification.data import load_classification_data

__all__ = ["TargetData", "check_source", "load_target"]

logger = logging.getLogger(__name__)

_FLAGS = {"--text_column": "--target_text_column", "--train_file": "--target_text_file",
          "--max_train_samples": "--target_max_samples", "--dataset_config_name": "--target_dataset_config_name"}


@dataclass
class TargetData:
    """The target domain of a run.

    Attributes:
        name: The target as named (a dataset or a file name).
        texts: Unlabelled texts to train on.
        held_out: Texts never trained on (the A-distance's target rows).
        test: The labelled test split (``text``, ``label`` as source class ids), or None.
        labels: The target's own label names, when it has labels.
        note: Why the target has no test metrics, when it has none.
        validation: The labelled validation split (as ``test``), or None.
        validation_note: Why the target has no labelled validation split, when it has none.
        fingerprint: sha256 of the training and held-out texts.
        dropped: Training texts dropped because the test split holds them too.
    """

    name: str
    texts: list[str]
    held_out: list[str]
    test: datasets.Dataset | None = None
    labels: list[str] | None = None
    note: str = ""
    fingerprint: str = ""
    dropped: int = 0
    validation: datasets.Dataset | None = None
    validation_note: str = ""

    def describe(self) -> dict[str, Any]:
        """Name, fingerprint and row counts, for the results file."""
        return {"name": self.name, "fingerprint": self.fingerprint, "unlabelled_texts": len(self.texts),
                "held_out_texts": len(self.held_out), "test_rows": len(self.test) if self.test is not None else 0,
                "labels": self.labels, "test_metrics_note": self.note or None,
                "validation_rows": len(self.validation) if self.validation is not None else 0,
                "dropped_test_overlap": self.dropped}


def check_source(data: Any) -> None:
    """Refuse a source that DANN's single-label classifier cannot train on.

    Raises:
        DataError: Multi-label rows, or text pairs.
    """
    if data.multi_label:
        raise DataError(f"The source {data.name} is multi-label (rows carry several labels); domain adaptation "
                        "trains a single-label classifier. Fix: give a single-label source (one label per row; drop "
                        "--label_separator).")
    if data.has_text_pair:
        raise DataError(f"The source {data.name} holds text pairs (--text_pair_column); the target is single "
                        "texts. Fix: drop --text_pair_column, or join each pair into one text.")


def _rename_flags(err: DataError, target: str) -> DataError:
    message = str(err)
    for flag, own in _FLAGS.items():
        message = message.replace(flag, own)
    return DataError(f"Target {target}: {message}")


def _texts(args: DomainArgs, data_args: DataArgs) -> Any:
    text_args = DataArgs(dataset_name=args.target_dataset, dataset_config_name=args.target_dataset_config_name,
                         train_file=args.target_text_file, text_column=args.target_text_column,
                         max_train_samples=args.target_max_samples, split_seed=data_args.split_seed,
                         validation_split_percentage=data_args.validation_split_percentage or 10.0)
    try:
        return load_text_data(text_args)
    except DataError as err:
        raise _rename_flags(err, args.target_name) from None


@dataclass
class _Labelled:
    """A target's labelled splits in source class ids (None where unusable), its label names, why not."""

    test: datasets.Dataset | None = None
    validation: datasets.Dataset | None = None
    labels: list[str] | None = None
    note: str = ""
    validation_note: str = ""


def _mapped(split: Any, index: dict[int, int]) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"text": list(split["text"]), "label": [index[i] for i in split["label"]]})


def _labelled_splits(args: DomainArgs, data_args: DataArgs, source_labels: list[str]) -> _Labelled:
    """The target's labelled test and validation splits, if usable (labels mapped onto the source's by name)."""
    if args.target_dataset is None:
        return _Labelled(note=(note := "the target is a text file (no labels)"), validation_note=note)
    label_args = DataArgs(dataset_name=args.target_dataset, dataset_config_name=args.target_dataset_config_name,
                          text_column=args.target_text_column, max_predict_samples=args.target_max_predict_samples,
                          max_eval_samples=data_args.max_eval_samples, split_seed=data_args.split_seed)
    try:
        data = load_classification_data(label_args)
    except DataError as err:
        logger.info("Target %s has no usable labels, so no target test metrics: %s", args.target_name, err)
        return _Labelled(note=(note := f"its labels could not be read ({err})"), validation_note=note)
    labels = list(data.labels)
    unknown = [name for name in labels if name not in source_labels]
    if data.multi_label or unknown:
        if unknown:
            logger.warning("Target %s has labels the source lacks (%s): no target test metrics.", args.target_name,
                           ", ".join(unknown))
        note = ("it is multi-label" if data.multi_label else
                f"its labels {unknown} are not among the source's {source_labels}")
        return _Labelled(labels=labels, note=note, validation_note=note)
    index = {i: source_labels.index(name) for i, name in enumerate(labels)}
    found = {split: _mapped(data.splits[split], index) if split in data.splits else None
             for split in ("test", "validation")}
    return _Labelled(found["test"], found["validation"], labels,
                     "" if found["test"] is not None else "it is multi-label or has no test split",
                     "" if found["validation"] is not None else "it has no validation split")


def load_target(args: DomainArgs, data_args: DataArgs, source_labels: list[str]) -> TargetData:
    """Load the target's unlabelled training texts, held-out texts and (labelled targets) its test split.

    Args:
        args: The target flags.
        data_args: The source's data flags (seed and held-out percentage are shared).
        source_labels: The source's class names (a labelled target's labels are mapped onto them by name).

    Returns:
        The :class:`TargetData`.

    Raises:
        DataError: An unreadable or empty target, a missing text column, too few held-out texts.
    """
    texts = _texts(args, data_args)
    scored = _labelled_splits(args, data_args, list(source_labels))
    test = scored.test
    train, held_out = list(texts.train), list(texts.validation)
    seen = set(test["text"]) if test is not None else set()
    held_out = [t for t in held_out if t not in seen]  # the validation rows stay: the A-distance never trains
    if scored.validation is not None:
        seen |= set(scored.validation["text"])
    train = [t for t in train if t not in seen]
    dropped = len(texts.train) - len(train)
    if not train:
        raise DataError(f"Target {args.target_name}: no unlabelled training texts left ({len(texts.train)} read, "
                        f"{dropped} also in its labelled test or validation split). Fix: give a target with more "
                        "texts.")
    needed = MIN_A_DISTANCE_ROWS if args.a_distance_samples else 0
    if len(held_out) < needed:
        raise DataError(f"Target {args.target_name}: {len(held_out)} held-out texts, too few for the A-distance "
                        f"(a_distance_samples={args.a_distance_samples}). Fix: raise --validation_split_percentage, "
                        "give more target texts, or set --a_distance_samples 0.")
    found = TargetData(name=texts.name, texts=train, held_out=held_out, test=test, labels=scored.labels,
                       note=scored.note, fingerprint=texts.fingerprint, dropped=dropped, validation=scored.validation,
                       validation_note=scored.validation_note)
    logger.info("Target %s: %d unlabelled training texts, %d held out, %s", found.name, len(train), len(held_out),
                f"{len(test)} labelled test rows" if test is not None else f"no test metrics ({scored.note})")
    return found
