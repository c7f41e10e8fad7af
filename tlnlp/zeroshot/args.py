"""Arguments of the zero-shot recipes.

``ZeroShotArgs``: what to score and how; ``EntailmentArgs``: how to build and evaluate label-entailment training
data. Every field is a flag and a YAML key.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tlnlp.zeroshot.specs import ZeroShotError, check_template

__all__ = ["ENTAILMENT_LABELS", "EntailmentArgs", "ZeroShotArgs", "ZeroShotError", "zero_shot_errors"]

#: Class names of a trained label-entailment model (id 0 = entailment, as the transformers pipeline needs it named).
ENTAILMENT_LABELS = ("entailment", "not_entailment")
_STRATEGIES = ("nli", "embedding")


@contextmanager
def zero_shot_errors() -> Iterator[None]:
    """In a recipe's ``__main__``: print a :class:`ZeroShotError` as one ``error: ...`` line and exit with status 2."""
    try:
        yield
    except ZeroShotError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


@dataclass
class ZeroShotArgs:
    """How ``recipes/zero_shot.py`` scores a labelled split without training."""

    strategy: str = field(
        default="nli",
        metadata={"help": "nli: an NLI cross-encoder scores (text, hypothesis) pairs (a Hub NLI model, a local "
                          "folder, or a model from recipes/train_entailment.py); embedding: cosine similarity of "
                          "mean-pooled embeddings of texts and label descriptions (works with bundled:minilm)."})
    spec: str = field(
        default="auto",
        metadata={"help": "Templates and label descriptions: a spec name (default, sentiment, trec6, sms_spam, "
                          "bbc_news, ...) or auto (the spec written for the dataset, else default)."})
    spec_file: str | None = field(
        default=None, metadata={"help": "YAML file with more specs (same shape as tlnlp/zeroshot/specs.yaml)."})
    hypothesis_template: list[str] | None = field(
        default=None, metadata={"help": "Templates with a {} slot that replace the spec's; several are averaged."})
    split: str = field(default="test", metadata={"help": "Which split to score (test, validation, train)."})
    entailment_index: int | None = field(
        default=None, metadata={"help": "Class id of entailment, for NLI configs whose label names do not say it."})
    embedding_temperature: float = field(
        default=0.05, metadata={"help": "Embedding strategy: probabilities are a softmax of similarity / this "
                                        "(multi-label: a sigmoid of the similarity above the row mean / this)."})

    def __post_init__(self) -> None:
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r} is not valid; choose one of: {', '.join(_STRATEGIES)}.")
        if self.embedding_temperature <= 0:
            raise ValueError(f"embedding_temperature={self.embedding_temperature!r} must be positive.")
        if self.hypothesis_template:
            for template in self.hypothesis_template:
                check_template(template)


@dataclass
class EntailmentArgs:
    """Which labelled datasets become label-entailment pairs, and where the trained model is evaluated."""

    train_datasets: list[str] = field(
        default_factory=lambda: ["bundled:trec6", "bundled:sms_spam"],
        metadata={"help": "Labelled classification datasets turned into (text, hypothesis) pairs: bundled:<name>, "
                          "Hub names, or local csv/tsv/json/jsonl/parquet files (several at once)."})
    num_negatives: int = field(
        default=1, metadata={"help": "Not-entailment pairs per example, each a different wrong label (-1: every "
                                     "wrong label). The gold label is never a negative."})
    max_samples_per_dataset: int | None = field(
        default=None, metadata={"help": "Keep N training examples of each dataset (seeded); validation and test "
                                        "keep N/8."})
    max_seq_length: int = field(default=128, metadata={"help": "Pairs longer than this are truncated (text only)."})
    spec_file: str | None = field(
        default=None, metadata={"help": "YAML with label descriptions for your datasets (shape of specs.yaml); the "
                                        "spec listing a dataset under `datasets` is used for it."})
    hypothesis_template: str | None = field(
        default=None, metadata={"help": "Template with a {} slot for training pairs (default: each dataset's spec)."})
    zero_shot_eval_datasets: list[str] = field(
        default_factory=list,
        metadata={"help": "After training, score the test split of these datasets zero-shot (labels never seen "
                          "in training), e.g. bundled:movie_sentiment."})
    zero_shot_max_samples: int | None = field(
        default=None, metadata={"help": "Score at most N test rows of each zero-shot evaluation dataset."})
    split_seed: int = field(default=42, metadata={"help": "Seed for subsampling and negative sampling."})

    def __post_init__(self) -> None:
        if not self.train_datasets:
            raise ValueError("train_datasets is empty; give at least one labelled dataset, e.g. bundled:trec6.")
        if self.num_negatives == 0 or self.num_negatives < -1:
            raise ValueError(f"num_negatives={self.num_negatives!r} must be a positive number, or -1 for every "
                             "wrong label.")
        for name in ("max_samples_per_dataset", "max_seq_length", "zero_shot_max_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive number.")
        seen = set(self.train_datasets) & set(self.zero_shot_eval_datasets)
        if seen:
            raise ValueError(f"zero_shot_eval_datasets {sorted(seen)} are also in train_datasets; zero-shot "
                             "evaluation needs tasks whose labels the model never saw.")
        if self.hypothesis_template is not None:
            check_template(self.hypothesis_template)
