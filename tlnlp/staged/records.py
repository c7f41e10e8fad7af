"""What a chain records: one :class:`StageRecord` per stage (and the baseline), and the :class:`StagedResult`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RECORD_FILE", "StageRecord", "StagedResult", "accuracy_of", "read_record"]

#: Written into a stage's folder last: its presence marks the stage as finished.
RECORD_FILE = "stage_record.json"
_SHOWN = ("eval_accuracy", "eval_f1_macro", "test_accuracy", "test_f1_macro", "train_loss")


@dataclass
class StageRecord:
    """One finished stage (or the target-only baseline).

    Attributes:
        index: Position in the chain, from 1 (0 for the baseline).
        name: The stage's folder name inside the chain's ``output_dir``.
        dataset: The data's name (``bundled:<name>``, a Hub name or a file name).
        data_version: Version of a bundled corpus, else None.
        fingerprint: sha256 of the stage's own data (every split and the label names), before any rehearsal rows.
        labels: Class names, in label-id order.
        method: The stage's ``--method``.
        epochs: ``num_train_epochs``.
        learning_rate: Peak learning rate.
        max_steps: ``max_steps`` (-1: epochs decide).
        train_samples_per_class: k-shot budget, if any.
        max_train_samples: Training-row cap, if any.
        train_rows: Rows trained on (rehearsal rows included).
        rehearsal_rows: Rows of the previous stage mixed in.
        head: ``kept``, ``reordered`` or ``new``.
        start_model: What the stage started from (model name, run folder or previous stage's folder name).
        metrics: Every number the stage's run reported (``eval_*``, ``test_*``, ``train_*``).
        seconds: Wall time of the stage.
        resumed_from: The checkpoint the stage resumed from, if any.
        settings: What decides the stage's result (checked when a chain is resumed).
    """

    index: int
    name: str
    dataset: str
    data_version: str | None
    fingerprint: str
    labels: list[str]
    method: str
    epochs: float
    learning_rate: float
    max_steps: int
    train_samples_per_class: int | None
    max_train_samples: int | None
    train_rows: int
    rehearsal_rows: int
    head: str
    start_model: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    resumed_from: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StageRecord:
        """The record :meth:`to_dict` wrote (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def accuracy_of(record: StageRecord) -> tuple[str, float] | None:
    """``("test", accuracy)``, else ``("validation", accuracy)`` from the record's metrics, else None."""
    for split, key in (("test", "test_accuracy"), ("validation", "eval_accuracy")):
        if isinstance(record.metrics.get(key), (int, float)):
            return split, float(record.metrics[key])
    return None


def read_record(folder: Path) -> StageRecord | None:
    """The record of a finished stage in ``folder``, or None when the stage did not finish there."""
    path = Path(folder) / RECORD_FILE
    if not path.is_file():
        return None
    return StageRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass
class StagedResult:
    """A finished chain: its stages, forgetting, the baseline comparison, and where the final model is.

    Attributes:
        output_dir: The chain's folder.
        start_model: The first stage's starting model.
        records: One record per stage, in order.
        forgetting: One entry per earlier stage (:func:`tlnlp.staged.forgetting.measure_forgetting`).
        baseline: The target-only comparison (:func:`tlnlp.staged.forgetting.compare_with_baseline`), or None.
        rehearsal_samples: Rows of the previous stage mixed into each later stage.
        version: tlnlp's version.
    """

    output_dir: str
    start_model: str
    records: list[StageRecord]
    forgetting: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    rehearsal_samples: int = 0
    version: str = ""

    @property
    def final_dir(self) -> Path:
        """The final model's folder (the last stage's)."""
        return Path(self.output_dir) / self.records[-1].name

    def metrics(self) -> dict[str, float]:
        """Flat numbers: ``stage<i>_<metric>``, ``final_<metric>``, ``hp_search_*``, forgetting, the baseline."""
        out: dict[str, float] = {}
        for record in self.records:
            for key in _SHOWN:
                if isinstance(record.metrics.get(key), (int, float)):
                    out[f"stage{record.index}_{key}"] = float(record.metrics[key])
        for key in _SHOWN:
            if isinstance(self.records[-1].metrics.get(key), (int, float)):
                out[f"final_{key}"] = float(self.records[-1].metrics[key])
        out.update({k: v for k, v in self.records[-1].metrics.items() if k.startswith("hp_search_")})
        for entry in self.forgetting:
            if entry["measurable"]:
                out[f"stage{entry['stage']}_accuracy_after_chain"] = entry["accuracy_after_chain"]
                out[f"stage{entry['stage']}_forgetting"] = entry["forgetting"]
        if self.baseline is not None:
            out["baseline_accuracy"] = self.baseline["baseline_accuracy"]
            out["transfer_gain"] = self.baseline["gain"]
            out["negative_transfer"] = float(self.baseline["negative_transfer"])
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-able (``staged_results.json``)."""
        return {"tlnlp_version": self.version, "start_model": self.start_model,
                "final_model": self.records[-1].name, "rehearsal_samples": self.rehearsal_samples,
                "stages": [r.to_dict() for r in self.records], "forgetting": self.forgetting,
                "baseline": self.baseline, "metrics": self.metrics()}
