"""Ladder strategies of the methods with a head on sentence embeddings: feature extraction, SetFit, fine-tuning.

Each cell loads the sentence encoder afresh (SetFit changes it), fits the method on the cell's k-shot rows
(:meth:`tlnlp.methods.heads.EmbeddingMethod.fit`) and scores the test split. The ``*_zero_shot_head`` variants
start the head at the zero-shot label prototypes and choose the pull towards them by cross-validation on the
cell's rows (``--head_init zero_shot --head_prior_strength auto``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from transformers import set_seed

from tlnlp.compare.budgets import budget_train_set
from tlnlp.compare.measure import PeakMemory
from tlnlp.compare.strategies import STRATEGIES, CellContext, Strategy, cell_training_args, test_metrics
from tlnlp.methods import METHODS, method_args_class
from tlnlp.methods.heads import FitInputs
from tlnlp.models.sentence import load_sentence_encoder
from tlnlp.runs import check_embedding_data
from tlnlp.zeroshot import label_prior

if TYPE_CHECKING:
    from tlnlp.compare.cells import Cell

__all__ = ["embedding_strategy"]

#: Bumped when a change alters the results of these cells, so cached cells are recomputed.
_VERSION = 3


def _method_args(ctx: CellContext, method: str, head_init: str) -> Any:
    """``MethodArgs`` at the method's defaults, with the ladder's SetFit cap and the head's start."""
    return method_args_class()(method=method, head_init=head_init,
                               setfit_max_steps=int(getattr(ctx.args, "setfit_max_steps", -1)))


def _fit(ctx: CellContext, cell: Cell, method: str, encoder: Any, inputs: FitInputs, args: Any) -> Any:
    """Fit the cell's method: the head alone on a (SetFit-trained) body, or a Trainer fit with the cell's rates."""
    found = METHODS.get(method)
    if found.needs_training_args:
        inputs.training = cell_training_args(ctx, cell, len(inputs.texts), str(inputs.output_dir),
                                             ctx.args.learning_rate(cell.strategy))
        return found.fit(encoder, inputs, args)
    return found.fit_head_on(encoder, inputs, args)


def _fit_cell(ctx: CellContext, cell: Cell, method: str, head_init: str) -> dict[str, Any]:
    set_seed(cell.seed)
    args = _method_args(ctx, method, head_init)
    train = ctx.data.splits["train"].select(ctx.budget_rows(cell.budget, cell.seed))
    prior = label_prior(ctx.args.zero_shot_spec, ctx.data.name, ctx.data.labels) if head_init == "zero_shot" else None
    encoder = load_sentence_encoder(ctx.model_args, device=ctx.device).encoder
    with tempfile.TemporaryDirectory(prefix="tlnlp-cell-") as tmp, PeakMemory(ctx.device) as memory:
        inputs = FitInputs(texts=list(train["text"]), labels=np.asarray(train["label"], dtype=np.int64),
                           label_names=list(ctx.data.labels), prior=prior, seed=cell.seed, output_dir=tmp,
                           max_length=ctx.data_args.max_seq_length, show_progress=False)
        body = _setfit_body(ctx, cell, encoder, inputs, args) if method == "setfit" else None
        start = time.perf_counter()
        outcome = _fit(ctx, cell, method, encoder, inputs, args)
        train_seconds = time.perf_counter() - start + (body["seconds"] if body else 0.0)
        start = time.perf_counter()
        probabilities = outcome.classifier.predict_proba(list(ctx.test["text"]), batch_size=ctx.args.eval_batch_size)
        infer_seconds = time.perf_counter() - start
    params = outcome.classifier.parameter_counts(METHODS.get(method).trains_encoder)
    record = {
        "metrics": test_metrics(ctx.test["label"], np.log(np.clip(probabilities, 1e-12, None)), ctx.data.num_labels),
        "n_train": len(train), "n_test": len(ctx.test), "train_time_s": train_seconds,
        "inference_s_per_example": infer_seconds / max(1, len(ctx.test)),
        "trainable_parameters": params["trainable"], "total_parameters": params["total"],
        "peak_memory_mb": memory.peak_mb, "memory_kind": memory.kind,
    }
    head_info = outcome.info.get("head", {})
    if "head_prior_strength" in head_info:
        record["head_prior_strength"] = head_info["head_prior_strength"]
    if body is not None:
        record.update(body_steps=body["body_steps"], body_time_s=body["seconds"])
    if inputs.training is not None:
        record.update(epochs=inputs.training.num_train_epochs, learning_rate=inputs.training.learning_rate,
                      train_loss=outcome.metrics.get("train_loss"))
    return record


def _setfit_body(ctx: CellContext, cell: Cell, encoder: Any, inputs: FitInputs, args: Any) -> dict[str, Any]:
    """Train ``encoder`` as SetFit's body phase, or reuse the body trained for the same rows, seed and settings.

    The SetFit strategies of one (budget, seed) differ only in their head, and the cells of a budget and seed run
    one after another: the last trained body is kept (its weights, steps and seconds), so each body trains once.
    The reusing cell reports the body's training time as its own.
    """
    key = (cell.budget, cell.seed, args.setfit_max_steps, ctx.data_args.max_seq_length)
    kept = ctx.loaded.get("setfit_body")
    if kept is not None and kept["key"] == key:
        encoder.load_state_dict(kept["state"])
        return kept["found"]
    start = time.perf_counter()
    found = METHODS.get("setfit").train_body(encoder, inputs, args)
    found["seconds"] = time.perf_counter() - start
    state = {name: tensor.detach().clone() for name, tensor in encoder.state_dict().items()}
    ctx.loaded["setfit_body"] = {"key": key, "state": state, "found": found}
    return found


def _settings(name: str, method: str, head_init: str) -> Callable[[CellContext, int | str], dict[str, Any]]:
    def settings(ctx: CellContext, budget: int | str) -> dict[str, Any]:
        found = {"method": method, "head_init": head_init, "max_seq_length": ctx.data_args.max_seq_length,
                 "version": _VERSION}
        if method == "setfit":
            found["setfit_max_steps"] = int(getattr(ctx.args, "setfit_max_steps", -1))
        if head_init == "zero_shot":
            found["zero_shot_spec"] = ctx.args.zero_shot_spec
        if METHODS.get(method).needs_training_args:
            n_train = len(budget_train_set(ctx.data.splits["train"], budget, 0))
            found.update(learning_rate=ctx.args.learning_rate(name), epochs=ctx.args.epochs_for(n_train),
                         batch_size=ctx.args.batch_size, warmup_ratio=ctx.args.warmup_ratio,
                         weight_decay=ctx.args.weight_decay)
        return found

    return settings


def embedding_strategy(method: str, description: str, *, name: str | None = None,
                       head_init: str = "random") -> Strategy:
    """A strategy that fits ``--method method`` (an embedding method) on each cell's k-shot rows.

    Args:
        method: A method of :data:`tlnlp.methods.METHODS` that trains without the Trainer.
        description: The table legend's line.
        name: The strategy's name (default: the method's).
        head_init: ``random``, or ``zero_shot`` for the head anchored at the zero-shot prototypes.
    """

    def run(ctx: CellContext, cell: Cell) -> dict[str, Any]:
        check_embedding_data(ctx.data, method)
        return _fit_cell(ctx, cell, method, head_init)

    kind = "trained" if METHODS.get(method).needs_training_args else "fitted"
    return Strategy(name=name or method, kind=kind, description=description, run=run,
                    settings=_settings(name or method, method, head_init))


for _strategy in (
    embedding_strategy("feature_extraction", "frozen sentence encoder: embed once, logistic-regression head"),
    embedding_strategy("feature_extraction", "feature extraction, head anchored at the zero-shot prototypes "
                       "(strength by cross-validation on the k-shot rows)", name="feature_extraction_zero_shot_head",
                       head_init="zero_shot"),
    embedding_strategy("setfit", "SetFit (setfit library): contrastive body training on pairs, logistic head"),
    embedding_strategy("setfit", "SetFit body, head anchored at the zero-shot prototypes (strength by "
                       "cross-validation on the k-shot rows)", name="setfit_zero_shot_head", head_init="zero_shot"),
    embedding_strategy("sentence_fine_tuning", "fine-tune the sentence encoder and a linear head on its embeddings "
                       "(Trainer)"),
    embedding_strategy("sentence_fine_tuning", "fine-tuning over sentence embeddings, head started at and pulled "
                       "towards the zero-shot prototypes (strength by cross-validation on the k-shot rows)",
                       name="sentence_fine_tuning_zero_shot_head", head_init="zero_shot"),
):
    STRATEGIES.register(_strategy.name, _strategy)
