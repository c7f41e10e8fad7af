"""Strategies of the ladder and the registry that names them.

A strategy turns a :class:`~tlnlp.compare.cells.Cell` into a result record. Trained strategies (``full``,
``feature_extraction``, ``lora``, ``ulmfit``, ``from_scratch``) fine-tune a classifier with the Trainer on the
cell's k-shot set through :func:`tlnlp.methods.apply_method`; baselines that need no training (zero-shot,
few-shot prompting) live in :mod:`tlnlp.compare.baselines`.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tlnlp.compare.budgets import budget_train_set
from tlnlp.registry import Registry

if TYPE_CHECKING:
    from tlnlp.compare.args import CompareArgs
    from tlnlp.compare.cells import Cell
    from tlnlp.compare.forgetting import ForgettingProbe
    from tlnlp.config import DataArgs, ModelArgs
    from tlnlp.data import TaskData

__all__ = ["STRATEGIES", "CellContext", "Strategy", "test_metrics"]

logger = logging.getLogger(__name__)


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
        import datasets

        from tlnlp.data import tokenize_classification

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
        kind: ``trained``, ``reference`` (from random initialisation), ``zero_shot`` or ``few_shot``.
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


#: Strategies by name (the ``--strategies`` list of the compare recipe).
STRATEGIES: Registry[Strategy] = Registry("strategy", "--strategies")


def test_metrics(gold: Any, scores: np.ndarray, num_labels: int) -> dict[str, float]:
    """Accuracy, macro-F1 and the other single-label metrics of ``scores`` (rows x classes) against ``gold``."""
    from tlnlp.tasks import classification_metrics, predictions_from_logits

    preds = predictions_from_logits(np.asarray(scores), multi_label=False)
    return classification_metrics(np.asarray(gold), preds, num_labels)


def _training_args(ctx: CellContext, cell: Cell, n_train: int, out_dir: str, lr: float) -> Any:
    from tlnlp.config import TrainingArgs

    args = ctx.args
    return TrainingArgs(
        output_dir=out_dir, overwrite_output_dir=True, seed=cell.seed, data_seed=cell.seed,
        num_train_epochs=args.epochs_for(n_train), learning_rate=lr, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size, warmup_steps=args.warmup_ratio,
        weight_decay=args.weight_decay, eval_strategy="no", save_strategy="no", report_to="none",
        logging_strategy="no", disable_tqdm=True, train_sampling_strategy="group_by_length",
        use_cpu=ctx.device == "cpu", dataloader_pin_memory=False, average_tokens_across_devices=False,
    )


def _trained_settings(method: str) -> Callable[[CellContext, int | str], dict[str, Any]]:
    def settings(ctx: CellContext, budget: int | str) -> dict[str, Any]:
        args = ctx.args
        n_train = len(budget_train_set(ctx.data.splits["train"], budget, 0))
        found = {"method": method, "learning_rate": args.learning_rate_map()[method],
                 "epochs": args.epochs_for(n_train), "batch_size": args.batch_size,
                 "warmup_ratio": args.warmup_ratio, "weight_decay": args.weight_decay,
                 "max_seq_length": ctx.data_args.max_seq_length}
        if method == "ulmfit":
            found["thaw_fraction"] = args.ulmfit_thaw_fraction
        if ctx.forgetting is not None and method != "from_scratch":
            found["forgetting"] = ctx.forgetting.settings()
        return found

    return settings


def _load_model(ctx: CellContext, from_scratch: bool) -> tuple[Any, Any]:
    from tlnlp.models import load_classifier

    model_args = ctx.model_args
    if from_scratch:
        model_args = dataclasses.replace(model_args, init_from_scratch=True)
    return load_classifier(model_args, labels=ctx.data.labels)


def _spread_thaws(ctx: CellContext, method_args: Any, groups: Any, n_train: int) -> Any:
    """ULMFiT's method args with thaws spaced so every group trains by ``ulmfit_thaw_fraction`` of the run."""
    below_head = max((group.get("thaw_order", 0) for group in groups or []), default=0)
    every = ctx.args.ulmfit_thaw_every(n_train, below_head)
    if every is None:
        return method_args
    logger.info("ULMFiT: one more layer group thaws every %d steps (%d groups below the head).", every, below_head)
    return dataclasses.replace(method_args, unfreeze_every_steps=every)


def _fit_and_score(ctx: CellContext, cell: Cell, method: str, from_scratch: bool) -> dict[str, Any]:
    """Load, prepare, train and score one trained cell; returns its record."""
    import datasets
    from transformers import PrinterCallback, set_seed

    from tlnlp.compare.measure import PeakMemory
    from tlnlp.methods import MethodArgs, apply_method
    from tlnlp.methods.adapters import adapter_callbacks
    from tlnlp.models import count_parameters
    from tlnlp.training import build_trainer

    set_seed(cell.seed)
    model, tokenizer = _load_model(ctx, from_scratch)
    method_args = MethodArgs(method="full" if from_scratch else method)
    model, groups = apply_method(model, method_args)
    params = count_parameters(model)
    full = ctx.tokenized(tokenizer)
    train = full["train"].select(ctx.budget_rows(cell.budget, cell.seed))
    if method == "ulmfit":
        method_args = _spread_thaws(ctx, method_args, groups, len(train))
    tokenized = datasets.DatasetDict({"train": train, "test": full["test"]})
    lr = ctx.args.learning_rate_map()[cell.strategy]
    with tempfile.TemporaryDirectory(prefix="tlnlp-cell-") as tmp:
        train_args = _training_args(ctx, cell, len(train), tmp, lr)
        trainer = build_trainer(model, tokenizer, tokenized, train_args, groups, method_args=method_args,
                                callbacks=adapter_callbacks(model))
        trainer.remove_callback(PrinterCallback)
        with PeakMemory(ctx.device) as memory:
            start = time.perf_counter()
            result = trainer.train()
            train_seconds = time.perf_counter() - start
            start = time.perf_counter()
            output = trainer.predict(tokenized["test"])
            infer_seconds = time.perf_counter() - start
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    record: dict[str, Any] = {
        "metrics": test_metrics(ctx.test["label"], logits, ctx.data.num_labels),
        "n_train": len(train), "n_test": len(ctx.test), "epochs": train_args.num_train_epochs,
        "train_time_s": train_seconds, "inference_s_per_example": infer_seconds / max(1, len(ctx.test)),
        "trainable_parameters": int(params["trainable"]), "total_parameters": int(params["total"]),
        "peak_memory_mb": memory.peak_mb, "memory_kind": memory.kind, "train_loss": result.training_loss,
        "learning_rate": lr,
    }
    if ctx.forgetting is not None and not from_scratch:
        record["forgetting"] = ctx.forgetting.measure(trainer.model)
    return record


def _trained(method: str, kind: str, description: str, from_scratch: bool = False) -> Strategy:
    def run(ctx: CellContext, cell: Cell) -> dict[str, Any]:
        return _fit_and_score(ctx, cell, method, from_scratch)

    return Strategy(name=method if not from_scratch else "from_scratch", kind=kind, description=description,
                    run=run, settings=_trained_settings("from_scratch" if from_scratch else method))


for _strategy in (
    _trained("full", "trained", "fine-tune every weight of the pretrained backbone and a new head"),
    _trained("feature_extraction", "trained", "frozen pretrained backbone, trained head"),
    _trained("lora", "trained", "LoRA adapters on the attention projections plus the head (peft)"),
    _trained("ulmfit", "trained", "ULMFiT: discriminative rates, slanted triangular schedule, gradual unfreezing"),
    _trained("full", "reference", "same architecture from random initialisation (no transfer)", from_scratch=True),
):
    STRATEGIES.register(_strategy.name, _strategy)

