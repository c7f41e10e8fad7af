"""Ladder strategies of the methods with a head on sentence embeddings: feature extraction, SetFit, fine-tuning.

Each cell loads the sentence encoder afresh (SetFit changes it), fits the method on the cell's k-shot rows
(:meth:`tlnlp.methods.heads.EmbeddingMethod.fit`) and scores the test split. The ``*_zero_shot_head`` variants
start the head at the zero-shot label prototypes and choose the pull towards them by cross-validation on the
cell's rows (``--head_init zero_shot --head_prior_strength auto``); ``setfit_label_texts_zero_shot_head`` also
trains the body on the zero-shot spec's label texts (``--setfit_label_texts``). The ``*_self_training`` variants then
self-train their head (:mod:`tlnlp.methods.heads.self_training`) on up to 3,000 of the training split's other
texts, their labels unread, as many per class as cross-validation on the cell's rows chooses: for feature
extraction the ladder's in-budget selection chooses the count with the head (each fold labels the texts with the
head fitted on its own rows), for SetFit the head chooses it inside (``--self_training_per_class auto``).

With in-budget selection (:mod:`tlnlp.compare.selection`) the ladder makes the head's choices itself, by k-fold
cross-validation on the cell's rows: the inverse L2 strength C of the logistic head, or the pull towards the
prototypes. Encoding follows ``--bf16 auto`` (bf16 autocast where the device multiplies bf16 fast; part of the
cell's key). Feature extraction encodes a budget's rows once (shared by both of its strategies); SetFit (``cv``)
trains one body per fold and body length (1, 2 or 4 epochs over its pairs) on that fold's rows; fine-tuning over
sentence embeddings (``cv``) chooses its learning rate and epochs as the Trainer strategies do.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from transformers import set_seed

from tlnlp.compare.budgets import budget_train_set
from tlnlp.compare.measure import PeakMemory
from tlnlp.compare.selection import cv_splits, select, selection_settings
from tlnlp.compare.strategies import STRATEGIES, CellContext, Strategy, cell_training_args, test_metrics
from tlnlp.config.precision import choose_bf16
from tlnlp.methods import METHODS, method_args_class
from tlnlp.methods.heads import PER_CLASS_GRID, FitInputs, FitOutcome, HeadOptions, fit_head
from tlnlp.models.sentence import load_sentence_encoder
from tlnlp.models.sentence_classifier import SentenceTransformerForSequenceClassification
from tlnlp.runs import check_embedding_data
from tlnlp.zeroshot import label_prior

if TYPE_CHECKING:
    from tlnlp.compare.cells import Cell

__all__ = ["embedding_strategy"]

#: Bumped when a change alters the results of these cells, so cached cells are recomputed.
_VERSION = 3
#: Unlabelled training texts a ``*_self_training`` strategy's head labels (seeded, outside the k-shot rows).
_POOL = 3000
#: The selection families (:data:`tlnlp.compare.selection.SEARCH_SPACES`) of the methods with a head of their own:
#: (random head, head anchored at the zero-shot prototypes).
_HEAD_FAMILIES = {"feature_extraction": ("head", "anchored_head"), "setfit": ("setfit_head", "setfit_anchored_head")}


def _family(method: str, head_init: str, self_training: bool = False) -> str | None:
    """The selection family of a strategy: its head's, the Trainer's (rate, epochs), or None (no choice)."""
    if method in _HEAD_FAMILIES and self_training:  # the head and its count of pseudo-labelled texts
        family = ("self_trained_head", "self_trained_anchored_head")[head_init == "zero_shot"]
        return family if method == "feature_extraction" else f"{method}_{family}"
    if method in _HEAD_FAMILIES:
        return _HEAD_FAMILIES[method][head_init == "zero_shot"]
    return "trained" if METHODS.get(method).needs_training_args else None


def _method_args(ctx: CellContext, method: str, head_init: str, options: dict[str, Any] | None = None) -> Any:
    """``MethodArgs`` at the method's defaults, with the ladder's SetFit cap, the head's start and ``options``."""
    return method_args_class()(method=method, head_init=head_init,
                               setfit_max_steps=int(getattr(ctx.args, "setfit_max_steps", -1)), **(options or {}))


def _fit(ctx: CellContext, cell: Cell, method: str, encoder: Any, inputs: FitInputs, args: Any,
         chosen: dict[str, Any] | None = None) -> Any:
    """Fit the cell's method: the head alone on a (SetFit-trained) body, or a Trainer fit with the cell's rates.

    ``chosen`` (in-budget selection) sets the learning rate and epochs of a Trainer fit, or the head's C or prior
    strength (the head is then fitted here on the encoder's embeddings of the rows).
    """
    found = METHODS.get(method)
    if found.needs_training_args:
        hyper = chosen or {"learning_rate": ctx.args.learning_rate(cell.strategy), "epochs": None}
        inputs.training = cell_training_args(ctx, cell, len(inputs.texts), str(inputs.output_dir),
                                             hyper["learning_rate"], epochs=hyper["epochs"])
        return found.fit(encoder, inputs, args)
    if chosen is not None:
        features, prior = _embedded(ctx, cell, method, encoder, inputs)
        options, start = _head_options(chosen, prior)
        pool = _pool(ctx, cell, method, encoder, inputs)
        head = fit_head(features, inputs.labels, len(inputs.label_names), options, start, inputs.seed, pool=pool)
        classifier = SentenceTransformerForSequenceClassification(
            encoder, head.weight, head.bias, inputs.label_names, head="logistic", max_length=inputs.max_length,
            bf16=inputs.bf16)
        info = {"head": "logistic", "head_init": "zero_shot" if "head_prior_strength" in chosen else "random",
                **chosen, **{k: v for k, v in head.info.items() if k.startswith("self_training")}}
        return FitOutcome(classifier, {"train_samples": len(inputs.texts)}, {"head": info})
    return found.fit_head_on(encoder, inputs, args)


def _embedded(ctx: CellContext, cell: Cell, method: str, encoder: Any, inputs: FitInputs) -> tuple[Any, Any]:
    """The rows' unit-length embeddings and the prototypes' head (zeros without a prior) under ``encoder``.

    A frozen encoder's embeddings of a budget's rows are computed once per run and shared by its strategies.
    """
    embed = lambda texts: inputs.embed(encoder, texts)  # noqa: E731
    key = ("frozen_rows", cell.budget, cell.seed, inputs.max_length, inputs.bf16)
    if method != "feature_extraction":  # a trained body: its own embeddings
        features = np.asarray(embed(inputs.texts), dtype=np.float64)
    else:
        if key not in ctx.loaded:
            ctx.loaded[key] = np.asarray(embed(inputs.texts), dtype=np.float64)
        features = ctx.loaded[key]
    if inputs.prior is None:
        return features, np.zeros((len(inputs.label_names), features.shape[1]))
    return features, inputs.prior.weights(embed)


def _pool(ctx: CellContext, cell: Cell, method: str, encoder: Any, inputs: FitInputs) -> np.ndarray | None:
    """The unlabelled texts' embeddings (None without them); a frozen encoder's are computed once per cell."""
    if not inputs.unlabeled:
        return None
    if method != "feature_extraction":
        return inputs.embed(encoder, inputs.unlabeled)
    key = ("frozen_pool", cell.budget, cell.seed, inputs.max_length, inputs.bf16, len(inputs.unlabeled))
    if key not in ctx.loaded:
        ctx.loaded[key] = np.asarray(inputs.embed(encoder, inputs.unlabeled), dtype=np.float64)
    return ctx.loaded[key]


def _head_options(params: dict[str, Any], prior: np.ndarray) -> tuple[HeadOptions, np.ndarray]:
    """The head of a grid point: C as an L2 pull of strength 1/C towards zero, or a pull towards the prototypes.

    A point of a self-training family also sets the count of pseudo-labelled texts per class (else ``auto``: the
    head chooses it inside, where it has unlabelled texts at all).
    """
    count = str(params.get("self_training_per_class", "auto"))
    if "C" in params:
        return (HeadOptions(head_prior_strength=repr(1.0 / params["C"]), self_training_per_class=count),
                np.zeros_like(prior))
    return HeadOptions(head_prior_strength=repr(float(params["head_prior_strength"])),
                       self_training_per_class=count), prior


def _head_logits(fold: tuple[Any, Any, Any], y_train: np.ndarray, params: dict[str, Any], seed: int,
                 pool: np.ndarray | None = None) -> np.ndarray:
    """Fit a head on ``fold``'s training embeddings (self-trained on ``pool`` where given); its held-out logits."""
    x_train, x_held, prior = fold
    options, start = _head_options(params, prior)
    head = fit_head(x_train, y_train, prior.shape[0], options, start, seed, pool=pool)
    return x_held @ head.weight.T + head.bias


def _setfit_fold(ctx: CellContext, cell: Cell, inputs: FitInputs, args: Any,
                 positions: tuple[np.ndarray, np.ndarray]) -> tuple[tuple[Any, Any, Any], np.ndarray | None]:
    """A SetFit body trained on one fold's training rows: its embeddings of rows, prototypes and unlabelled texts.

    Returns ``(train rows, held-out rows, prototypes)`` and the unlabelled texts' embeddings where the cell
    self-trains (else None). Kept on the context, so the strategies of a budget and seed (either head) train each
    fold's body once; a self-training strategy after one without unlabelled texts trains the (seeded, identical)
    body again to embed them.
    """
    train, held = positions
    key = ("setfit_fold", cell.budget, cell.seed, args.setfit_max_steps, args.setfit_num_epochs, inputs.max_length,
           args.setfit_label_texts, tuple(held.tolist()))
    if key not in ctx.loaded or (inputs.unlabeled and ctx.loaded[key][3] is None):
        set_seed(cell.seed)
        encoder = load_sentence_encoder(ctx.model_args, device=ctx.device).encoder
        with tempfile.TemporaryDirectory(prefix="tlnlp-fold-") as tmp:
            METHODS.get("setfit").train_body(encoder, dataclasses.replace(
                inputs, texts=[inputs.texts[i] for i in train], labels=inputs.labels[train], output_dir=tmp), args)
        embed = lambda texts: inputs.embed(encoder, texts)  # noqa: E731
        prior = label_prior(ctx.args.zero_shot_spec, ctx.data.name, ctx.data.labels).weights(embed)
        ctx.loaded[key] = (embed([inputs.texts[i] for i in train]), embed([inputs.texts[i] for i in held]), prior,
                           embed(inputs.unlabeled) if inputs.unlabeled else None)
    x_train, x_held, prior, pool = ctx.loaded[key]
    return (x_train, x_held, prior if inputs.prior is not None else np.zeros_like(prior)), (
        pool if inputs.unlabeled else None)


def _trained_fold(ctx: CellContext, cell: Cell, method: str, inputs: FitInputs, args: Any,
                  hyper: dict[str, Any], positions: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Log-probabilities on one fold's held-out rows of the method fitted (Trainer) on its training rows."""
    train, held = positions
    set_seed(cell.seed)
    encoder = load_sentence_encoder(ctx.model_args, device=ctx.device).encoder
    with tempfile.TemporaryDirectory(prefix="tlnlp-fold-") as tmp:
        fold = dataclasses.replace(inputs, texts=[inputs.texts[i] for i in train], labels=inputs.labels[train],
                                   output_dir=tmp)
        fold.training = cell_training_args(ctx, cell, len(train), tmp, hyper["learning_rate"], epochs=hyper["epochs"])
        outcome = METHODS.get(method).fit(encoder, fold, args)
        probabilities = outcome.classifier.predict_proba([inputs.texts[i] for i in held],
                                                         batch_size=ctx.args.eval_batch_size)
    return np.log(np.clip(probabilities, 1e-12, None))


def _body_args(args: Any, params: dict[str, Any]) -> Any:
    """The method's flags with a grid point's SetFit body epochs (``setfit_num_epochs``), if it has them."""
    if "setfit_num_epochs" not in params:
        return args
    return dataclasses.replace(args, setfit_num_epochs=int(params["setfit_num_epochs"]))


def _choose(ctx: CellContext, cell: Cell, method: str, encoder: Any, inputs: FitInputs, args: Any) -> dict[str, Any]:
    """In-budget selection of the cell's choice on its k-shot rows alone (``inputs``); the selection record."""
    setting = cell.config["selection"]
    y = inputs.labels
    splits = cv_splits(y, cell.seed, setting["max_folds"], setting["repeats"])
    grid = [dict(point) for point in setting["grid"]]
    if setting["family"] == "trained":
        default = {"learning_rate": ctx.args.learning_rate(cell.strategy), "epochs": ctx.args.epochs_for(len(y))}
        grid = [{"learning_rate": default["learning_rate"] * p["learning_rate_scale"],
                 "epochs": default["epochs"] * p["epochs_scale"]} for p in grid]

        def predict(params: dict[str, Any], fold: int, train: np.ndarray, held: np.ndarray) -> np.ndarray:
            return _trained_fold(ctx, cell, method, inputs, args, params, (train, held))
    elif method == "setfit":
        def predict(params: dict[str, Any], fold: int, train: np.ndarray, held: np.ndarray) -> np.ndarray:
            body, pool = _setfit_fold(ctx, cell, inputs, _body_args(args, params), (train, held))
            return _head_logits(body, y[train], params, cell.seed, pool)
    else:
        features, prior = _embedded(ctx, cell, method, encoder, inputs)
        pool = _pool(ctx, cell, method, encoder, inputs)

        def predict(params: dict[str, Any], fold: int, train: np.ndarray, held: np.ndarray) -> np.ndarray:
            return _head_logits((features[train], features[held], prior), y[train], params, cell.seed, pool)
    return {"family": setting["family"],
            **select(grid, y, splits, predict, setting["metric"], len(inputs.label_names), setting.get("then"))}


def _unlabeled(ctx: CellContext, cell: Cell) -> list[str]:
    """The self-training pool: up to ``_POOL`` seeded training texts outside the cell's k-shot rows, labels unread."""
    kept = set(ctx.budget_rows(cell.budget, cell.seed))
    order = np.random.default_rng(cell.seed).permutation(len(ctx.data.splits["train"]))
    rows = [int(i) for i in order if int(i) not in kept][:_POOL]
    return list(ctx.data.splits["train"].select(rows)["text"])


def _fit_cell(ctx: CellContext, cell: Cell, method: str, head_init: str,
              options: dict[str, Any] | None = None) -> dict[str, Any]:
    set_seed(cell.seed)
    args = _method_args(ctx, method, head_init, options)
    train = ctx.data.splits["train"].select(ctx.budget_rows(cell.budget, cell.seed))
    prior = label_prior(ctx.args.zero_shot_spec, ctx.data.name, ctx.data.labels) if head_init == "zero_shot" else None
    encoder = load_sentence_encoder(ctx.model_args, device=ctx.device).encoder
    with tempfile.TemporaryDirectory(prefix="tlnlp-cell-") as tmp, PeakMemory(ctx.device) as memory:
        inputs = FitInputs(texts=list(train["text"]), labels=np.asarray(train["label"], dtype=np.int64),
                           label_names=list(ctx.data.labels), prior=prior, seed=cell.seed, output_dir=tmp,
                           max_length=ctx.data_args.max_seq_length, show_progress=False,
                           bf16=bool(cell.config.get("encode_bf16", False)),
                           unlabeled=_unlabeled(ctx, cell) if cell.config.get("self_training") else None)
        start = time.perf_counter()
        selection = _choose(ctx, cell, method, encoder, inputs, args) if cell.config.get("selection") else None
        selection_seconds = time.perf_counter() - start
        body_args = _body_args(args, selection["chosen"] if selection else {})
        body = _setfit_body(ctx, cell, encoder, inputs, body_args) if method == "setfit" else None
        start = time.perf_counter()
        outcome = _fit(ctx, cell, method, encoder, inputs, args, selection["chosen"] if selection else None)
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
    if "self_training" in head_info:
        record.update(self_training_per_class=head_info["self_training"]["per_class"],
                      pseudo_rows=head_info["self_training"]["pseudo_rows"])
    if body is not None:
        record.update(body_steps=body["body_steps"], body_time_s=body["seconds"],
                      body_epochs=body_args.setfit_num_epochs, label_text_rows=body.get("label_text_rows", 0))
    if inputs.training is not None:
        record.update(epochs=inputs.training.num_train_epochs, learning_rate=inputs.training.learning_rate,
                      train_loss=outcome.metrics.get("train_loss"))
    if selection is not None:
        record.update(selection=selection, selection_time_s=selection_seconds)
    return record


def _setfit_body(ctx: CellContext, cell: Cell, encoder: Any, inputs: FitInputs, args: Any) -> dict[str, Any]:
    """Train ``encoder`` as SetFit's body phase, or reuse the body trained for the same rows, seed and settings.

    The SetFit strategies of one (budget, seed) differ only in their head, and the cells of a budget and seed run
    one after another: the last trained body is kept (its weights, steps and seconds), so each body trains once.
    The reusing cell reports the body's training time as its own.
    """
    key = (cell.budget, cell.seed, args.setfit_max_steps, args.setfit_num_epochs, ctx.data_args.max_seq_length,
           args.setfit_label_texts)
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


def _settings(name: str, method: str, head_init: str, self_training: bool,
              options: dict[str, Any] | None = None) -> Callable[[CellContext, int | str], dict[str, Any]]:
    def settings(ctx: CellContext, budget: int | str) -> dict[str, Any]:
        found = {"method": method, "head_init": head_init, "max_seq_length": ctx.data_args.max_seq_length,
                 "encode_bf16": choose_bf16(use_cpu=ctx.device == "cpu").bf16, "version": _VERSION,
                 **dict(options or {})}
        if self_training:
            found.update(self_training=True, self_training_pool=_POOL, self_training_grid=list(PER_CLASS_GRID))
        if method == "setfit":
            found["setfit_max_steps"] = int(getattr(ctx.args, "setfit_max_steps", -1))
        if head_init == "zero_shot":
            found["zero_shot_spec"] = ctx.args.zero_shot_spec
        if METHODS.get(method).needs_training_args:
            n_train = len(budget_train_set(ctx.data.splits["train"], budget, 0))
            found.update(learning_rate=ctx.args.learning_rate(name), epochs=ctx.args.epochs_for(n_train),
                         batch_size=ctx.args.batch_size, warmup_ratio=ctx.args.warmup_ratio,
                         weight_decay=ctx.args.weight_decay)
        return found | selection_settings(ctx.args, _family(method, head_init, self_training))

    return settings


def embedding_strategy(method: str, description: str, *, name: str | None = None, head_init: str = "random",
                       self_training: bool = False, options: dict[str, Any] | None = None) -> Strategy:
    """A strategy that fits ``--method method`` (an embedding method) on each cell's k-shot rows.

    Args:
        method: A method of :data:`tlnlp.methods.METHODS` that trains without the Trainer.
        description: The table legend's line.
        name: The strategy's name (default: the method's).
        head_init: ``random``, or ``zero_shot`` for the head anchored at the zero-shot prototypes.
        self_training: The head self-trains on the training split's other texts (labels unread), as many per
            class as cross-validation on the k-shot rows chooses.
        options: More of the method's flags (e.g. ``{"setfit_label_texts": True}``); part of the cells' keys.
    """

    def run(ctx: CellContext, cell: Cell) -> dict[str, Any]:
        check_embedding_data(ctx.data, method)
        return _fit_cell(ctx, cell, method, head_init, options)

    kind = "trained" if METHODS.get(method).needs_training_args else "fitted"
    return Strategy(name=name or method, kind=kind, description=description, run=run,
                    settings=_settings(name or method, method, head_init, self_training, options))


for _strategy in (
    embedding_strategy("feature_extraction", "frozen sentence encoder: embed once, logistic-regression head"),
    embedding_strategy("feature_extraction", "feature extraction, head anchored at the zero-shot prototypes "
                       "(strength by cross-validation on the k-shot rows)", name="feature_extraction_zero_shot_head",
                       head_init="zero_shot"),
    embedding_strategy("setfit", "SetFit (setfit library): contrastive body training on pairs, logistic head"),
    embedding_strategy("setfit", "SetFit body, head anchored at the zero-shot prototypes (strength by "
                       "cross-validation on the k-shot rows)", name="setfit_zero_shot_head", head_init="zero_shot"),
    embedding_strategy("setfit", "SetFit body trained on the k-shot rows and the zero-shot spec's label texts, head "
                       "anchored at the zero-shot prototypes (strength by cross-validation on the k-shot rows)",
                       name="setfit_label_texts_zero_shot_head", head_init="zero_shot",
                       options={"setfit_label_texts": True}),
    *(embedding_strategy(method, f"{name}, then self-training on up to {_POOL} unlabelled training texts (texts "
                         "per class by cross-validation on the k-shot rows)", name=f"{name}_self_training",
                         head_init=init, self_training=True)
      for method, name, init in (("feature_extraction", "feature_extraction", "random"),
                                 ("feature_extraction", "feature_extraction_zero_shot_head", "zero_shot"),
                                 ("setfit", "setfit", "random"), ("setfit", "setfit_zero_shot_head", "zero_shot"))),
    embedding_strategy("sentence_fine_tuning", "fine-tune the sentence encoder and a linear head on its embeddings "
                       "(Trainer)"),
    embedding_strategy("sentence_fine_tuning", "fine-tuning over sentence embeddings, head started at and pulled "
                       "towards the zero-shot prototypes (strength by cross-validation on the k-shot rows)",
                       name="sentence_fine_tuning_zero_shot_head", head_init="zero_shot"),
):
    STRATEGIES.register(_strategy.name, _strategy)
