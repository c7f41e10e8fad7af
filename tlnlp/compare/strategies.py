"""Strategies of the ladder, the registry that names them, and the trained strategies of every method.

A strategy turns a :class:`~tlnlp.compare.cells.Cell` into a result record. Every method of
:data:`tlnlp.methods.METHODS` (built in or registered by a plugin) is a trained strategy of the same name: it
fine-tunes a classifier with the Trainer on the cell's k-shot set through :func:`tlnlp.methods.apply_method`, with
``TrainingArgs`` parsed like a recipe's. :data:`STRATEGIES` holds the rest: ``from_scratch`` (the reference) and
the baselines that need no training (zero-shot, few-shot prompting, :mod:`tlnlp.compare.baselines`), plus the
table legend of the built-in trained strategies.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np
from transformers import DataCollatorWithPadding, PrinterCallback, set_seed

from tlnlp.compare.budgets import budget_train_set
from tlnlp.compare.measure import PeakMemory
from tlnlp.compare.selection import cv_splits, select, selection_settings
from tlnlp.config import TrainingArgs, parse_args
from tlnlp.methods import METHODS, Method, apply_method, method_args_class
from tlnlp.models import count_parameters, load_classifier
from tlnlp.registry import Registry
from tlnlp.tasks import TASKS, classification_metrics, predictions_from_logits
from tlnlp.tasks.classification.tokenize import tokenize_classification
from tlnlp.training import TlnlpTrainer, build_trainer

if TYPE_CHECKING:
    from tlnlp.compare.args import CompareArgs
    from tlnlp.compare.cells import Cell
    from tlnlp.compare.forgetting import ForgettingProbe
    from tlnlp.config import DataArgs, ModelArgs
    from tlnlp.tasks.classification.data import TaskData

__all__ = ["STRATEGIES", "TEST_SCORES", "TRAINED_KINDS", "CellContext", "CellStart", "Strategy", "cell_training_args",
           "fit_and_score", "get_strategy", "predict_test", "strategy_names", "test_metrics", "trained_strategy"]

logger = logging.getLogger(__name__)

#: The ``kind`` of the strategies that train (a learning rate each, see ``CompareArgs.learning_rates``).
TRAINED_KINDS = ("trained", "reference")


@dataclass
class CellContext:
    """What every cell of one compare run shares.

    Attributes:
        data: The loaded data; every cell is scored on ``test`` and trained cells draw from ``data.splits["train"]``.
        test: The test split (``data``'s test split, else its validation split).
        prompt_test: The rows scored by slow prompt-based strategies (a nested, seeded subset of ``test``).
        model_args: The backbone of the trained strategies and of embedding zero-shot.
        data_args: Data settings (``max_seq_length``).
        args: The compare settings.
        device: Resolved device (``cpu``, ``cuda``...).
        forgetting: The forgetting probe of the backbone, or None when the check is off.
        loaded: Objects loaded once per run and shared by cells (e.g. the prompting LM).
    """

    data: TaskData
    test: Any
    prompt_test: Any
    model_args: ModelArgs
    data_args: DataArgs
    args: CompareArgs
    device: str
    forgetting: ForgettingProbe | None = None
    loaded: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    _tokenized: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def tokenized(self, tokenizer: Any) -> Any:
        """``train`` and ``test`` tokenised once per tokenizer (datasets hashes the tokenizer on every map)."""
        key = f"{getattr(tokenizer, 'name_or_path', '')}|{len(tokenizer)}|{self.data_args.max_seq_length}"
        if key not in self._tokenized:
            both = dataclasses.replace(self.data, splits=datasets.DatasetDict(
                {"train": self.data.splits["train"], "test": self.test}))
            self._tokenized[key] = tokenize_classification(both, tokenizer, self.data_args.max_seq_length)
        return self._tokenized[key]

    def budget_rows(self, budget: int | str, seed: int) -> list[int]:
        """Row indices of the training split in the budget's nested k-shot set for ``seed``."""
        train = self.data.splits["train"]
        indexed = train.add_column("_row", list(range(len(train))))
        return list(budget_train_set(indexed, budget, seed)["_row"])


@dataclass(frozen=True)
class Strategy:
    """A named way to get a classifier, and how its cells are keyed.

    Attributes:
        name: The name used in ``--strategies``.
        kind: ``trained`` (the Trainer), ``fitted`` (a head on sentence embeddings, no learning rate), ``reference``
            (from random initialisation), ``zero_shot`` or ``few_shot``.
        description: One line for the table's legend.
        run: ``run(ctx, cell) -> record`` (metrics and costs of the cell).
        settings: ``settings(ctx, budget) -> dict`` of what, besides the budget, seed, model and data, changes the
            result; hashed into the cell key.
        uses_labels: False for zero-shot (one cell, budget 0).
        seeded: False when the result does not depend on the seed (one cell per budget).
    """

    name: str
    kind: str
    description: str
    run: Callable[[CellContext, Cell], dict[str, Any]]
    settings: Callable[[CellContext, int | str], dict[str, Any]]
    uses_labels: bool = True
    seeded: bool = True


#: Strategies by name that are not simply a method of :data:`tlnlp.methods.METHODS` (or that describe one).
STRATEGIES: Registry[Strategy] = Registry("strategy", "--strategies")


def strategy_names() -> list[str]:
    """Every name ``--strategies`` accepts: the registered strategies and every registered method, sorted."""
    return sorted(set(STRATEGIES.names()) | set(METHODS.names()))


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``: a registered one, else the trained strategy of the method of that name.

    Raises:
        tlnlp.registry.RegistryError: Neither a strategy nor a method; the message suggests close names.
    """
    if name in STRATEGIES:
        return STRATEGIES.get(name)
    if ":" in name:
        from tlnlp.compare.ensemble_strategies import ensemble_strategy  # deferred: it imports this module
        from tlnlp.compare.joint_strategies import dann_strategy, joint_strategy  # deferred: it imports this module
        from tlnlp.compare.transfer_strategies import transfer_strategy  # deferred: it imports this module
        from tlnlp.compare.vote_strategies import vote_strategy  # deferred: it imports this module

        found = (transfer_strategy(name) or joint_strategy(name) or dann_strategy(name) or ensemble_strategy(name)
                 or vote_strategy(name))
        if found is not None:
            return found
    if name in METHODS and METHODS.get(name).trains_with_trainer:
        return trained_strategy(name, _describe(METHODS.get(name)))
    if name in METHODS:  # a plugin's method that fits a head on sentence embeddings
        from tlnlp.compare.embedding_strategies import embedding_strategy  # deferred: it imports this module

        return embedding_strategy(name, _describe(METHODS.get(name)))
    known: Registry[str] = Registry("strategy", "--strategies")
    for known_name in strategy_names():
        known.register(known_name, known_name)
    known.get(name)  # raises, naming the closest strategies
    raise AssertionError(name)  # pragma: no cover - get raised


def _describe(method: Method) -> str:
    """The legend of a method's strategy: the method's own description for a classifier."""
    return method.describe(TASKS.get("classification")).strip() or f"trained with --method {method.name}"


#: While set (by an ``ensemble:`` cell's member), :func:`test_metrics` hands it each ``(gold, scores)`` it scores.
TEST_SCORES: contextvars.ContextVar[Callable[[Any, np.ndarray], None] | None] = contextvars.ContextVar("test_scores")


def test_metrics(gold: Any, scores: np.ndarray, num_labels: int) -> dict[str, float]:
    """Accuracy, macro-F1 and the other single-label metrics of ``scores`` (rows x classes) against ``gold``."""
    if (seen := TEST_SCORES.get(None)) is not None:
        seen(gold, np.asarray(scores))
    preds = predictions_from_logits(np.asarray(scores), multi_label=False)
    return classification_metrics(np.asarray(gold), preds, num_labels)


def cell_training_args(ctx: CellContext, cell: Cell, n_train: int, out_dir: str, learning_rate: float,
                       epochs: float | None = None, overrides: dict[str, Any] | None = None) -> TrainingArgs:
    """The ``TrainingArgs`` of a trained cell, parsed like a recipe's.

    :func:`tlnlp.config.parse_args` gives tlnlp's training defaults (:data:`tlnlp.config.TLNLP_TRAINING_DEFAULTS`,
    e.g. length-grouped batches) and checks the values; the cell's settings from the compare config override them.
    A cell trains, then scores the test split once: no evaluation during training, checkpoints, logs or reports.
    ``epochs`` (default: ``CompareArgs.epochs_for(n_train)``) is set by in-budget selection; ``overrides`` replaces
    any other setting (e.g. evaluation during a source stage).
    """
    args = ctx.args
    settings = {
        "output_dir": out_dir, "overwrite_output_dir": True, "seed": cell.seed, "data_seed": cell.seed,
        "num_train_epochs": args.epochs_for(n_train) if epochs is None else epochs, "learning_rate": learning_rate,
        "per_device_train_batch_size": args.batch_size, "per_device_eval_batch_size": args.eval_batch_size,
        "warmup_steps": args.warmup_ratio, "weight_decay": args.weight_decay,
        "eval_strategy": "no", "save_strategy": "no", "logging_strategy": "no", "report_to": "none",
        "disable_tqdm": True, "use_cpu": ctx.device == "cpu", "dataloader_pin_memory": False,
    } | (overrides or {})
    (train_args,) = parse_args(TrainingArgs, args=[], defaults=settings)
    return train_args


def _method_args(method: str) -> Any:
    """The method's ``MethodArgs`` with every option at its default (composed with methods registered since)."""
    return method_args_class()(method=method)


def _ulmfit_settings(method_args: Any) -> dict[str, Any] | None:
    """The method's resolved ULMFiT settings when they change training (part of the cell key), else None."""
    resolve = getattr(method_args, "ulmfit_settings", None)
    settings = resolve() if resolve is not None else None
    return dataclasses.asdict(settings) if settings is not None and settings.active else None


def _trained_settings(name: str, method: str, from_scratch: bool) -> Callable[[CellContext, int | str], dict]:
    def settings(ctx: CellContext, budget: int | str) -> dict[str, Any]:
        args = ctx.args
        n_train = len(budget_train_set(ctx.data.splits["train"], budget, 0))
        found = {"method": name, "learning_rate": args.learning_rate(name), "epochs": args.epochs_for(n_train),
                 "batch_size": args.batch_size, "warmup_ratio": args.warmup_ratio, "weight_decay": args.weight_decay,
                 "max_seq_length": ctx.data_args.max_seq_length}
        ulmfit = _ulmfit_settings(_method_args(method))
        if ulmfit is not None:
            found["ulmfit"] = ulmfit
        if ctx.forgetting is not None and not from_scratch:
            found["forgetting"] = ctx.forgetting.settings()
        return found | selection_settings(args, "trained")

    return settings


def predict_test(ctx: CellContext, cell: Cell, model: Any, tokenizer: Any) -> tuple[np.ndarray, float]:
    """Logits of a trained ``model`` on the ladder's test rows, in their order, and the seconds it took.

    tlnlp's Trainer scores rows in order; the stock Trainer would group them by length under tlnlp's default
    ``group_by_length`` and hand back the predictions in that order.
    """
    with tempfile.TemporaryDirectory(prefix="tlnlp-cell-") as tmp:
        trainer = TlnlpTrainer(model=model, args=cell_training_args(ctx, cell, 1, tmp, 0.0),
                               data_collator=DataCollatorWithPadding(tokenizer))
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        output = trainer.predict(ctx.tokenized(tokenizer)["test"])
        seconds = time.perf_counter() - start
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    return np.asarray(logits), seconds


def _load_model(ctx: CellContext, from_scratch: bool) -> tuple[Any, Any]:
    model_args = ctx.model_args
    if from_scratch:
        model_args = dataclasses.replace(model_args, init_from_scratch=True)
    return load_classifier(model_args, labels=ctx.data.labels)


def _train_and_predict(trainer: Any, test: Any, device: str) -> dict[str, Any]:
    """Train, then score ``test``; the logits, the training loss, and the time and peak memory of both."""
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        result = trainer.train()
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        output = trainer.predict(test)
        infer_seconds = time.perf_counter() - start
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    return {"logits": logits, "train_loss": result.training_loss, "train_time_s": train_seconds,
            "infer_seconds": infer_seconds, "peak_memory_mb": memory.peak_mb, "memory_kind": memory.kind}


@dataclass
class CellStart:
    """How a trained cell departs from the plain one (the transfer strategies, :mod:`.transfer_strategies`).

    Attributes:
        load: ``load() -> (model, tokenizer)``, the start instead of the backbone's new classifier.
        extra_train: ``extra_train(tokenizer) -> rows`` tokenised like the k-shot rows and trained with them (e.g.
            rehearsal rows of a source task).
        after: ``after(trainer) -> dict`` merged into the record once trained (e.g. the source task's accuracy).
    """

    load: Callable[[], tuple[Any, Any]] | None = None
    extra_train: Callable[[Any], Any] | None = None
    after: Callable[[Any], dict[str, Any]] | None = None


def _with_extra(train: Any, start: CellStart, tokenizer: Any) -> Any:
    """The tokenised k-shot rows, and the start's extra rows (e.g. rehearsal) after them."""
    if start.extra_train is None:
        return train
    return datasets.concatenate_datasets([train, start.extra_train(tokenizer).cast(train.features)])


def _fold_logits(ctx: CellContext, cell: Cell, method: str, from_scratch: bool, start: CellStart,
                 rows: tuple[list[int], list[int]], hyper: dict[str, float]) -> np.ndarray:
    """Train a fresh model on the training rows ``rows[0]`` alone and return its logits on the rows ``rows[1]``."""
    set_seed(cell.seed)
    model, tokenizer = start.load() if start.load is not None else _load_model(ctx, from_scratch)
    prepared = apply_method(model, _method_args(method))
    split = ctx.tokenized(tokenizer)["train"]
    train = _with_extra(split.select(rows[0]), start, tokenizer)
    with tempfile.TemporaryDirectory(prefix="tlnlp-fold-") as tmp:
        train_args = cell_training_args(ctx, cell, len(train), tmp, hyper["learning_rate"], epochs=hyper["epochs"])
        trainer = build_trainer(prepared, tokenizer, datasets.DatasetDict({"train": train}), train_args)
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        output = trainer.predict(split.select(rows[1]))  # tlnlp's Trainer keeps the rows' order
    return np.asarray(output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions)


def _select_training(ctx: CellContext, cell: Cell, method: str, from_scratch: bool, start: CellStart,
                     default: dict[str, float]) -> dict[str, Any]:
    """Choose the learning rate and epochs by k-fold cross-validation on the cell's k-shot rows (no test row)."""
    setting = cell.config["selection"]
    rows = ctx.budget_rows(cell.budget, cell.seed)
    labels = np.asarray(ctx.data.splits["train"].select(rows)["label"])
    grid = [{"learning_rate": default["learning_rate"] * point["learning_rate_scale"],
             "epochs": default["epochs"] * point["epochs_scale"]} for point in setting["grid"]]
    splits = cv_splits(labels, cell.seed, setting["max_folds"], setting["repeats"])

    def predict(hyper: dict[str, float], fold: int, train: np.ndarray, held: np.ndarray) -> np.ndarray:
        return _fold_logits(ctx, cell, method, from_scratch, start,
                            ([rows[i] for i in train], [rows[i] for i in held]), hyper)

    began = time.perf_counter()
    found = select(grid, labels, splits, predict, setting["metric"], ctx.data.num_labels)
    return {"family": setting["family"], **found, "seconds": time.perf_counter() - began}


def fit_and_score(ctx: CellContext, cell: Cell, method: str, from_scratch: bool = False,
                  start: CellStart | None = None) -> dict[str, Any]:
    """Load, prepare, train and score one trained cell; returns its record (``start`` changes where it starts).

    A cell whose configuration carries ``selection`` first chooses its learning rate and epochs by cross-validation
    on its k-shot rows (:mod:`tlnlp.compare.selection`); the record holds the choice under ``selection``.
    """
    start = start or CellStart()
    set_seed(cell.seed)
    model, tokenizer = start.load() if start.load is not None else _load_model(ctx, from_scratch)
    prepared = apply_method(model, _method_args(method))
    params = count_parameters(prepared.model)
    full = ctx.tokenized(tokenizer)
    train = _with_extra(full["train"].select(ctx.budget_rows(cell.budget, cell.seed)), start, tokenizer)
    hyper = {"learning_rate": ctx.args.learning_rate(cell.strategy), "epochs": ctx.args.epochs_for(len(train))}
    selection = None
    if cell.config.get("selection"):
        selection = _select_training(ctx, cell, method, from_scratch, start, hyper)
        hyper = selection["chosen"]
    tokenized = datasets.DatasetDict({"train": train, "test": full["test"]})
    with tempfile.TemporaryDirectory(prefix="tlnlp-cell-") as tmp:
        train_args = cell_training_args(ctx, cell, len(train), tmp, hyper["learning_rate"], epochs=hyper["epochs"])
        # the methods' own callbacks (e.g. AdaLoRA's rank budget) come from build_trainer's hooks, once
        trainer = build_trainer(prepared, tokenizer, tokenized, train_args)
        trainer.remove_callback(PrinterCallback)
        done = _train_and_predict(trainer, tokenized["test"], ctx.device)
        after = start.after(trainer) if start.after is not None else {}
    record: dict[str, Any] = {
        "metrics": test_metrics(ctx.test["label"], done["logits"], ctx.data.num_labels),
        "n_train": len(train), "n_test": len(ctx.test), "epochs": train_args.num_train_epochs,
        "train_time_s": done["train_time_s"], "inference_s_per_example": done["infer_seconds"] / max(1, len(ctx.test)),
        "trainable_parameters": int(params["trainable"]), "total_parameters": int(params["total"]),
        "peak_memory_mb": done["peak_memory_mb"], "memory_kind": done["memory_kind"],
        "train_loss": done["train_loss"], "learning_rate": hyper["learning_rate"], **after,
    }
    if selection is not None:
        record.update(selection_time_s=selection.pop("seconds"), selection=selection)
    if ctx.forgetting is not None and not from_scratch:
        record["forgetting"] = ctx.forgetting.measure(trainer.model)
    return record


def trained_strategy(method: str, description: str, *, name: str | None = None, kind: str = "trained",
                     from_scratch: bool = False) -> Strategy:
    """A strategy that trains a classifier with ``--method method`` on each cell's k-shot set.

    Args:
        method: A method of :data:`tlnlp.methods.METHODS`.
        description: The table legend's line.
        name: The strategy's name (default: the method's).
        kind: ``trained``, or ``reference`` for a baseline such as training from random initialisation.
        from_scratch: Start from the backbone's architecture with random weights (no transfer).
    """
    name = name or method

    def run(ctx: CellContext, cell: Cell) -> dict[str, Any]:
        return fit_and_score(ctx, cell, method, from_scratch)

    return Strategy(name=name, kind=kind, description=description, run=run,
                    settings=_trained_settings(name, method, from_scratch))


for _strategy in (  # the legend of the built-in methods the ladder shows by default, and the reference
    trained_strategy("full", "fine-tune every weight of the pretrained backbone and a new head"),
    trained_strategy("frozen_backbone", "frozen pretrained backbone; the Trainer trains pooler and head"),
    trained_strategy("lora", "LoRA adapters on the attention projections plus the head (peft)"),
    trained_strategy("ulmfit", "ULMFiT: discriminative rates, slanted triangular schedule, gradual unfreezing"),
    trained_strategy("full", "same architecture from random initialisation (no transfer)", name="from_scratch",
                     kind="reference", from_scratch=True),
):
    STRATEGIES.register(_strategy.name, _strategy)
