"""The task registry: everything one task knows lives in its folder, behind one :class:`Task` registered here.

A task turns a data source into its canonical splits, loads a model with its head, tokenises, scores and writes
predictions, describes itself on the model card, and runs a saved model for inference. The layers above
(recipes, :mod:`tlnlp.runs`, :mod:`tlnlp.inference`, :mod:`tlnlp.hub`, ``python -m tlnlp predict``) call
these hooks and never name a task. Add one with ``@register_task`` on a :class:`Task` subclass in a module that
``tlnlp.tasks`` imports.

``import tlnlp.tasks`` stays light (no ``transformers``, ``datasets`` or ``evaluate``): a task's hooks import
its heavy modules when they run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from tlnlp.errors import UserError
from tlnlp.registry import Registry, RegistryError

__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "TASK_ENTRY_POINT_GROUP",
    "ConfusionFigure",
    "Evaluation",
    "SavedModel",
    "Task",
    "TaskInputError",
    "load_task_data",
    "load_task_plugins",
    "pipeline_tag_for",
    "register_task",
    "run_setting",
    "task_for_architectures",
    "task_for_pipeline_tag",
]

#: The task of a saved model whose head no task claims (e.g. a bare encoder), and of cards with unknown task words.
DEFAULT_TASK = "classification"


class TaskInputError(UserError, ValueError):
    """An input that a task cannot take, e.g. plain text given to a question-answering run."""


@dataclass
class ConfusionFigure:
    """A confusion matrix for the report layer to draw (:func:`tlnlp.report.plot_evaluation`).

    Attributes:
        gold: True class ids.
        predicted: Predicted class ids.
        labels: Label names by class id.
        path: The PNG to write.
        title: First title line.
    """

    gold: Any
    predicted: Any
    labels: list[str]
    path: Path
    title: str


@dataclass
class Evaluation(Mapping[str, float]):
    """What :meth:`Task.evaluate` found: metrics for every process, figures for the main one to draw.

    It reads as the mapping of its metrics (``all_metrics.update(evaluation)``).

    Attributes:
        metrics: Split-prefixed metrics (``eval_*``, ``test_*``).
        figures: Figures of the scored splits (drawn by :func:`tlnlp.report.plot_evaluation`).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    figures: list[ConfusionFigure] = field(default_factory=list)

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)


@dataclass
class SavedModel:
    """A saved model to run for inference, as :mod:`tlnlp.inference` found it.

    Attributes:
        source: What ``from_pretrained`` reads: a local folder or a Hub repo id.
        folder: The local run folder (``run_config.yaml``, ``environment.json``), None for a Hub id.
        config: The model's transformers config (the base model's, for an adapter).
        model: The loaded model when loading needed more than ``from_pretrained`` (an adapter run), else None:
            the task loads it from ``source``.
        tokenizer: The loaded tokenizer, with ``model``.
        architectures: Class names of the model, the head's first (from the loaded model, else the config).
    """

    source: str
    folder: Path | None
    config: Any
    model: Any = None
    tokenizer: Any = None
    architectures: tuple[str, ...] = ()

    def run_config(self) -> dict[str, Any]:
        """The run's ``run_config.yaml`` (the settings it trained with), or ``{}`` when there is none."""
        path = self.folder / "run_config.yaml" if self.folder is not None else None
        if path is None or not path.is_file():
            return {}
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def run_setting(ctx: Any, name: str, default: Any = None) -> Any:
    """The value of setting ``name`` in a run's parsed argument objects (``ctx.config_objects``).

    Args:
        ctx: A :class:`tlnlp.runs.RunContext` (anything with ``config_objects``).
        name: A field name, e.g. ``"multi_label_threshold"`` or ``"doc_stride"``.
        default: Returned when no object has the field.

    Returns:
        The field of the first argument object that has it.
    """
    for obj in getattr(ctx, "config_objects", ()):
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


class Task:
    """One task: its data, model head, tokenisation, scoring, card text and inference, as hooks.

    Subclass it in ``tlnlp/tasks/<name>/task.py``, set the class attributes, override the hooks the task needs
    and decorate the class with :func:`register_task`. Hooks that get ``ctx`` receive the run's
    :class:`tlnlp.runs.RunContext`: ``output_dir``, ``data``, ``config_objects``, ``trained`` (``trainer``,
    ``datasets``: what :meth:`tokenize` returned) or ``scores`` (``split``, ``probabilities``, ``threshold``),
    ``results`` (values the recipe measured) and ``is_main_process``.

    Attributes:
        name: The registry name (``task=`` of :func:`load_task_data`).
        pipeline_tag: The Hub pipeline tag of its models.
        pipeline_tags: Task words a card may be built with (lower case) -> Hub pipeline tag.
        heads: Parts of model class names that mark a saved model of this task (``"ForQuestionAnswering"``).
        recipe: The recipe file stem that trains it.
        head: The head it trains, in words, for the card's method description (e.g. "classification head").
        input_help: What one input of ``python -m tlnlp predict`` is; None: the command does not take this task.
        usage_example: A call of ``pipe = tlnlp.load_pipeline(...)`` for a pushed card; None: the card shows
            plain ``transformers.pipeline`` usage.
    """

    name: ClassVar[str]
    pipeline_tag: ClassVar[str]
    pipeline_tags: ClassVar[Mapping[str, str]] = {}
    heads: ClassVar[tuple[str, ...]] = ()
    recipe: ClassVar[str]
    head: ClassVar[str] = "task head"
    input_help: ClassVar[str | None] = None
    usage_example: ClassVar[str | None] = None

    # ------------------------------------------------------------------ data, model, training
    def load_data(self, data_args: Any, seed: int | None = None, **options: Any) -> Any:
        """Load, validate and split the data ``data_args`` names into this task's canonical splits."""
        raise NotImplementedError(f"task {self.name!r} does not load data")

    def load_model(self, model_args: Any, data: Any, **options: Any) -> tuple[Any, Any]:
        """``(model, tokenizer)``: the backbone with this task's head, sized for ``data``."""
        raise NotImplementedError(f"task {self.name!r} does not load models")

    def prepare_model(self, model: Any) -> Any:
        """Adjust the model after a method prepared (e.g. wrapped) it; default: unchanged."""
        return model

    def tokenize(self, data: Any, tokenizer: Any, data_args: Any, **options: Any) -> Any:
        """The tokenised splits (a ``DatasetDict``) that training and :meth:`evaluate` use."""
        raise NotImplementedError(f"task {self.name!r} does not tokenize")

    def trainer_datasets(self, tokenized: Any) -> Any:
        """The splits as the Trainer takes them (only model inputs and labels); default: ``tokenized``."""
        return tokenized

    def data_collator(self, tokenizer: Any, **options: Any) -> Any | None:
        """The Trainer's collator; None: dynamic padding."""
        return None

    def compute_metrics(self, data: Any, data_args: Any) -> Callable[..., dict[str, float]] | None:
        """The Trainer's ``compute_metrics``; None when the task scores in :meth:`evaluate` instead."""
        return None

    # ------------------------------------------------------------------ outputs of a run
    def evaluate(self, ctx: Any) -> Evaluation:
        """Score the run's validation and test splits and write their predictions (main process only).

        Every process of a training run calls it (prediction is collective).
        """
        return Evaluation()

    def card_task(self, ctx: Any) -> str:
        """The task in words for the card (its pipeline tag follows from :func:`pipeline_tag_for`)."""
        return self.pipeline_tag

    def card_sections(self, ctx: Any) -> dict[str, str]:
        """Extra card sections, title -> markdown."""
        return {}

    def card_tags(self, ctx: Any) -> list[str]:
        """Extra card tags."""
        return []

    def card_metrics(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The metrics the card shows; default: all."""
        return dict(metrics)

    def card_settings(self, ctx: Any) -> dict[str, Any]:
        """Task settings shown with the hyperparameters on the card."""
        return {}

    def environment(self, ctx: Any) -> dict[str, Any]:
        """Task facts for ``environment.json``."""
        return {}

    # ------------------------------------------------------------------ inference
    def owns(self, architecture: str) -> bool:
        """Whether a model class name (``BertForQuestionAnswering``) is a model of this task."""
        return any(head in architecture for head in self.heads)

    def pipeline(self, saved: SavedModel, device: int | str | None, kwargs: dict[str, Any]) -> Any:
        """A pipeline running ``saved`` as the run did (its label names, truncation, window settings)."""
        raise NotImplementedError(f"task {self.name!r} has no inference pipeline")

    def parse_input(self, line: str) -> Any:
        """One ``python -m tlnlp predict`` input (an argument or a stdin line) as the pipeline takes it.

        Raises:
            TaskInputError: The input does not fit this task, or the command does not take this task.
        """
        raise TaskInputError(f"python -m tlnlp predict takes no inputs for {self.name} runs; load the run in "
                             "Python with tlnlp.load_pipeline(OUTPUT_DIR).")

    def predict(self, pipe: Any, inputs: Sequence[Any], top_k: int) -> list[dict[str, Any]]:
        """One JSON-able record per input: the input and its ``predictions`` (best first)."""
        raise TaskInputError(f"python -m tlnlp predict does not run {self.name} models.")

    def format_prediction(self, record: Mapping[str, Any]) -> str:
        """One line of text for a record of :meth:`predict`."""
        return json.dumps(record, ensure_ascii=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


T = TypeVar("T", bound=type[Task])

#: Tasks by name; holds :class:`Task` instances.
TASKS: Registry[Task] = Registry("task", "task")

#: The entry-point group that task plugins register in (a :class:`Task` subclass or instance).
TASK_ENTRY_POINT_GROUP = "tlnlp.tasks"


def load_task_plugins() -> list[str]:
    """Register the task of every installed ``tlnlp.tasks`` entry point (done once by ``import tlnlp.tasks``).

    Returns:
        The names of the tasks the plugins provide.

    Raises:
        tlnlp.registry.PluginError: An entry point cannot be imported, is not a Task, or takes a registered name.
    """
    return TASKS.load_plugins(TASK_ENTRY_POINT_GROUP, Task)


def register_task(cls: T) -> T:
    """Class decorator: register an instance of ``cls`` under ``cls.name``.

    Raises:
        ValueError: The name is taken.
    """
    TASKS.register(cls.name, cls())
    return cls


def _tasks() -> list[Task]:
    return [TASKS.get(name) for name in TASKS.names()]


def load_task_data(data_args: Any, task: str = DEFAULT_TASK, seed: int | None = None, **options: Any) -> Any:
    """Load, validate and split the data that ``data_args`` describes, for ``task``.

    Classification (the default) gives a :class:`~tlnlp.tasks.classification.data.TaskData` (``text``,
    ``text_pair``, ``label`` and the label names; see
    :func:`~tlnlp.tasks.classification.data.load_classification_data`); ``"question-answering"`` a
    :class:`~tlnlp.tasks.qa.data.QAData` (pass ``qa_args=``); ``"language-modeling"`` a
    :class:`~tlnlp.data.TextData`.

    Args:
        data_args: Where the data is and how much of it to use (:class:`tlnlp.config.DataArgs`).
        task: A name in :data:`TASKS`.
        seed: Seed for splitting and sampling; defaults to ``data_args.split_seed``.
        **options: The task's own options (e.g. ``qa_args`` for question answering).

    Returns:
        The task's data: splits and provenance (name, version, licence, fingerprint).

    Raises:
        DataError: An unknown task, or any problem with the data; the message says how to fix it.
    """
    try:
        chosen = TASKS.get(task)
    except RegistryError as err:
        from tlnlp.data.validation import DataError  # deferred: `import tlnlp.tasks` stays free of transformers

        raise DataError(str(err)) from None
    return chosen.load_data(data_args, seed=seed, **options)


def task_for_architectures(architectures: Sequence[str]) -> Task:
    """The task of a saved model: the first class name that a task owns decides (the head's, listed first).

    Args:
        architectures: Model class names, e.g. ``("BertForQuestionAnswering", "BertModel")``.

    Returns:
        The owning task, or the :data:`DEFAULT_TASK` one when no task owns any name (a bare encoder).
    """
    for architecture in architectures:
        for task in _tasks():
            if task.owns(architecture):
                return task
    return TASKS.get(DEFAULT_TASK)


def pipeline_tag_for(task_words: str) -> str:
    """The Hub pipeline tag of a card built for ``task_words`` (a task's name or one of its ``pipeline_tags``).

    Args:
        task_words: E.g. ``"question-answering"``, ``"multi-label classification"`` or ``"causal-lm"``.

    Returns:
        The tag the task that knows the words gives; else the :data:`DEFAULT_TASK`'s pipeline tag.
    """
    words = task_words.lower()
    for task in _tasks():
        if words in task.pipeline_tags:
            return task.pipeline_tags[words]
        if words == task.name:
            return task.pipeline_tag
    return TASKS.get(DEFAULT_TASK).pipeline_tag


def task_for_pipeline_tag(tag: str | None) -> Task | None:
    """The task whose models carry the Hub pipeline tag ``tag`` (its main tag), or None."""
    return next((task for task in _tasks() if tag is not None and task.pipeline_tag == tag), None)
