"""What a finished run hands to :func:`tlnlp.outputs.finish`: a small context instead of a dozen arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FittedRun", "RunContext", "Scores", "TrainedRun"]


@dataclass
class TrainedRun:
    """A run that trained a model with the Trainer.

    Attributes:
        trainer: The Trainer after ``train()``.
        train_result: What ``train()`` returned.
        datasets: The tokenized splits the Trainer saw (``validation``/``test`` are scored by the task).
        prepared: What :func:`tlnlp.methods.apply_method` returned: the method arguments and the methods whose
            hooks run (they save their extras and describe themselves on the card).
    """

    trainer: Any
    train_result: Any
    datasets: Any
    prepared: Any


@dataclass
class FittedRun:
    """A run that fitted a classifier without the Trainer (a head on sentence embeddings: feature extraction, SetFit).

    Attributes:
        classifier: The fitted classifier (``predict_proba(texts)``, ``save(folder)``), saved in the run folder.
        metrics: ``train_*`` numbers of the fit.
        method: The :class:`tlnlp.methods.Method` that fitted it (describes itself on the card).
        method_args: The parsed ``MethodArgs``.
        train_args: The run's ``TrainingArguments`` (output folder, seed, push flags).
    """

    classifier: Any
    metrics: dict[str, float]
    method: Any
    method_args: Any
    train_args: Any


@dataclass
class Scores:
    """A run that scored a labelled split without training (zero-shot, few-shot).

    Attributes:
        split: The split of ``data.splits`` that was scored, e.g. ``"test"``.
        probabilities: ``rows x labels`` probabilities in label-id order (softmax rows for single-label data).
        method: Method name for the card and tags, e.g. ``"zero_shot_nli"``.
        description: One or two sentences on how the scores were obtained.
        threshold: Multi-label: a label is predicted when its probability exceeds this.
    """

    split: str
    probabilities: Any
    method: str
    description: str
    threshold: float = 0.5


@dataclass
class RunContext:
    """Everything the output pipeline needs to know about one run.

    Attributes:
        output_dir: The run's folder.
        recipe: The recipe that ran, as its file stem (``"classification"``, ``"train_entailment"``...), or the
            path of a script of your own (``"my_project/train_regression.py"``); the card names it in the command
            that reproduces the run.
        task: The :class:`tlnlp.tasks.Task` of the run (scores the splits, writes predictions, adds card sections).
        data: The task's data (name, version, fingerprint, licence, splits...).
        base_model: The model the run started from (Hub id, folder or ``bundled:<name>``).
        config_objects: The parsed argument dataclasses, written to ``run_config.yaml`` without secrets.
        trained: Set for a run trained with the Trainer.
        fitted: Set for a run fitted without the Trainer.
        scores: Set for an evaluation-only run.
        results: Extra JSON-able results merged into ``all_results.json`` (and the split's results file of an
            evaluation-only run).
        files: Extra JSON files to write, file name -> content.
        sections: Extra card sections, title -> markdown.
    """

    output_dir: Path
    recipe: str
    task: Any
    data: Any
    base_model: str
    config_objects: tuple[Any, ...]
    trained: TrainedRun | None = None
    scores: Scores | None = None
    fitted: FittedRun | None = None
    results: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        if sum(kind is not None for kind in (self.trained, self.scores, self.fitted)) != 1:
            raise ValueError("A RunContext describes a Trainer run (trained=...), a run fitted without the Trainer "
                             "(fitted=...) or an evaluation-only run (scores=...): set exactly one.")

    @property
    def is_main_process(self) -> bool:
        """Whether this process writes files (always, for an evaluation-only run)."""
        return self.trained is None or bool(self.trained.trainer.is_world_process_zero())

    @property
    def script(self) -> str:
        """The script that ran: ``recipes/<recipe>.py``, or :attr:`recipe` itself when it is a ``.py`` path."""
        return self.recipe if self.recipe.endswith(".py") else f"recipes/{self.recipe}.py"

    @property
    def train_args(self) -> Any:
        """The ``TrainingArguments`` of a training or fitted run, else None."""
        if self.fitted is not None:
            return self.fitted.train_args
        return self.trained.trainer.args if self.trained is not None else None
