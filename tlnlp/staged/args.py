"""``StagedArgs``: the chain of stages, rehearsal, the target-only baseline and the data settings every stage shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tlnlp.staged.spec import StageOptions, parse_stage_item

__all__ = ["BASELINES", "StagedArgs"]

#: Values of ``--baseline``.
BASELINES = ("none", "target_only")

_STAGES_HELP = (
    "The chain, in order: one item per stage, each comma-separated key=value pairs, e.g. "
    "--stages dataset=bundled:amazon_sentiment,method=full,epochs=1,learning_rate=5e-5 "
    "dataset=bundled:movie_sentiment,train_samples_per_class=8,epochs=10 (in YAML a list of such strings, or of "
    "mappings). Keys: dataset (alias of dataset_name) or train_file [validation_file, test_file, text_column, "
    "label_column...], max_train_samples, train_samples_per_class, max_seq_length and every other data flag of "
    "recipes/classification.py; method and any method option (lora_r...); epochs (num_train_epochs), "
    f"{', '.join(k for k in StageOptions.__dataclass_fields__ if k not in ('name', 'new_head', 'num_train_epochs'))}"
    "; new_head "
    "(true: a new head even when the labels are the previous stage's); name (folder: stage<i>_<name>). A key "
    "left out takes the chain's value (the top-level flag). The first stage starts from --model_name_or_path (a "
    "model, or any run folder); each next one from the stage before.")


@dataclass
class StagedArgs:
    """A staged (intermediate-task) transfer chain: its stages, rehearsal, baseline and shared data settings."""

    stages: list[str] = field(default_factory=list, metadata={"help": _STAGES_HELP})
    rehearsal_samples: int = field(
        default=0, metadata={"help": "Mix N seeded rows of the previous stage's training rows into each later "
                                     "stage's training set (against forgetting). Needs the same labels in both."})
    baseline: str = field(
        default="none", metadata={"help": "target_only: also train the last stage's data alone from the chain's "
                                          "starting model (same method, epochs, rate, seed) and flag negative "
                                          "transfer when the chain scores below it. none: skip it."})
    max_seq_length: int = field(default=128, metadata={"help": "Every stage, unless it sets its own: longer inputs "
                                                                 "are truncated."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Every stage, unless it sets its own: "
                                                                           "keep N validation rows."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Every stage, unless it sets its own: "
                                                                              "keep N test rows."})
    split_seed: int = field(default=42, metadata={"help": "Every stage, unless it sets its own: seed for "
                                                            "splitting and sampling the data."})

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("stages is empty; give at least one stage, e.g. --stages "
                             "dataset=bundled:amazon_sentiment,epochs=1 dataset=bundled:movie_sentiment")
        for position, item in enumerate(self.stages):
            parse_stage_item(item, position)  # syntax and keys now; values when the chain starts
        if not isinstance(self.rehearsal_samples, int) or self.rehearsal_samples < 0:
            raise ValueError(f"rehearsal_samples={self.rehearsal_samples!r} must be 0 (off) or a number of rows.")
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline={self.baseline!r} is not valid; choose one of: {', '.join(BASELINES)}.")
        if self.baseline != "none" and len(self.stages) < 2:
            raise ValueError(f"baseline={self.baseline!r} compares a chain with its last stage trained alone; the "
                             "chain has one stage. Add a stage before it, or drop --baseline.")
        if self.rehearsal_samples and len(self.stages) < 2:
            raise ValueError(f"rehearsal_samples={self.rehearsal_samples} mixes the previous stage's rows into the "
                             "next stage; the chain has one stage. Add a stage, or drop --rehearsal_samples.")
        for name in ("max_seq_length", "max_eval_samples", "max_predict_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive number.")

    def data_defaults(self) -> dict[str, Any]:
        """The data flags every stage takes unless it sets its own."""
        return {"max_seq_length": self.max_seq_length, "max_eval_samples": self.max_eval_samples,
                "max_predict_samples": self.max_predict_samples, "split_seed": self.split_seed}

