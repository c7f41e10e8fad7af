"""Strategies that train nothing: zero-shot (entailment model, embedding similarity) and few-shot prompting.

Zero-shot cells use no labels, so the ladder runs each once (budget 0) and draws it as a horizontal line.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from tlnlp.compare.budgets import effective_shots
from tlnlp.compare.measure import PeakMemory
from tlnlp.compare.strategies import STRATEGIES, CellContext, Strategy, test_metrics
from tlnlp.fewshot import FewShotOptions, evaluate_few_shot, load_causal_lm
from tlnlp.fewshot import resolve_spec as resolve_fewshot_spec
from tlnlp.models import count_parameters
from tlnlp.zeroshot import ScoringOptions, load_zero_shot_model, resolve_spec, zero_shot_probabilities

if TYPE_CHECKING:
    from tlnlp.compare.cells import Cell

__all__ = ["few_shot_strategy", "zero_shot_strategy"]

_ZERO_SHOT_KIND = {"zero_shot_nli": "nli", "zero_shot_embeddings": "embedding"}


def _zero_shot_model_args(ctx: CellContext, name: str) -> Any:
    if _ZERO_SHOT_KIND[name] == "nli":
        return dataclasses.replace(ctx.model_args, model_name_or_path=str(ctx.args.nli_model), tokenizer_name=None,
                                   init_from_scratch=False)
    return ctx.model_args


def _zero_shot_rows(ctx: CellContext, name: str) -> Any:
    """Entailment scoring costs one pass per (text, label): it is scored on the prompt subset."""
    return ctx.prompt_test if _ZERO_SHOT_KIND[name] == "nli" else ctx.test


def _spec(ctx: CellContext, name: str) -> Any:
    return resolve_spec(ctx.args.zero_shot_spec, ctx.data.name, _ZERO_SHOT_KIND[name])


def _zero_shot_settings(name: str) -> Any:
    def settings(ctx: CellContext, budget: int | str) -> dict[str, Any]:
        spec = _spec(ctx, name)
        return {"zero_shot_model": _zero_shot_model_args(ctx, name).model_name_or_path, "spec": spec.name,
                "spec_version": spec.version, "rows": len(_zero_shot_rows(ctx, name)),
                "max_seq_length": ctx.data_args.max_seq_length}

    return settings


def _zero_shot_run(name: str) -> Any:
    def run(ctx: CellContext, cell: Cell) -> dict[str, Any]:
        kind = _ZERO_SHOT_KIND[name]
        rows = _zero_shot_rows(ctx, name)
        spec = _spec(ctx, name)
        model, tokenizer = load_zero_shot_model(kind, _zero_shot_model_args(ctx, name), ctx.device)
        options = ScoringOptions(batch_size=ctx.args.eval_batch_size, max_length=ctx.data_args.max_seq_length)
        with PeakMemory(ctx.device) as memory:
            start = time.perf_counter()
            probs = zero_shot_probabilities(kind, model, tokenizer, rows["text"], ctx.data.labels, spec, options)
            seconds = time.perf_counter() - start
        return {"metrics": test_metrics(rows["label"], probs, ctx.data.num_labels), "n_train": 0,
                "n_test": len(rows), "train_time_s": 0.0, "inference_s_per_example": seconds / max(1, len(rows)),
                "trainable_parameters": 0, "total_parameters": int(count_parameters(model)["total"]),
                "peak_memory_mb": memory.peak_mb, "memory_kind": memory.kind, "spec": spec.name,
                "spec_version": spec.version}

    return run


def zero_shot_strategy(name: str, description: str) -> Strategy:
    """A zero-shot strategy: one cell (budget 0, no seed) scored with :mod:`tlnlp.zeroshot`."""
    return Strategy(name=name, kind="zero_shot", description=description, run=_zero_shot_run(name),
                    settings=_zero_shot_settings(name), uses_labels=False, seeded=False)


STRATEGIES.register("zero_shot_nli", zero_shot_strategy(
    "zero_shot_nli", "zero-shot: an entailment model scores (text, 'This example is {label}.') pairs"))
STRATEGIES.register("zero_shot_embeddings", zero_shot_strategy(
    "zero_shot_embeddings", "zero-shot: cosine similarity of sentence embeddings of text and label description"))


def _few_shot_model(ctx: CellContext) -> tuple[Any, Any]:
    """The prompting LM, loaded once per run and kept on the context."""
    cached = ctx.loaded.get("few_shot_model")
    if cached is None:
        model_args = dataclasses.replace(ctx.model_args, model_name_or_path=ctx.args.fewshot_model,
                                         tokenizer_name=None, init_from_scratch=False)
        cached = load_causal_lm(model_args, ctx.device)
        ctx.loaded["few_shot_model"] = cached
    return cached


def _few_shot_settings(ctx: CellContext, budget: int | str) -> dict[str, Any]:
    spec = resolve_fewshot_spec(ctx.args.fewshot_spec, ctx.data.name)
    # demonstrations = the nested k-shot rows for k = min(budget, fewshot_shots): budgets above the cap share a cell
    return {"budget": effective_shots(budget, ctx.args.fewshot_shots), "fewshot_model": ctx.args.fewshot_model,
            "spec": spec.name, "spec_version": spec.version, "calibrate": True, "normalization": "sum",
            "rows": len(ctx.prompt_test)}


def _few_shot_run(ctx: CellContext, cell: Cell) -> dict[str, Any]:
    spec = resolve_fewshot_spec(ctx.args.fewshot_spec, ctx.data.name)
    model, tokenizer = _few_shot_model(ctx)
    shots = int(cell.config["budget"])
    rows = ctx.prompt_test
    options = FewShotOptions(shots=shots, seeds=[cell.seed], orders=1, calibrate=True,
                             batch_size=ctx.args.eval_batch_size, show_progress=False)
    with PeakMemory(ctx.device) as memory:
        start = time.perf_counter()
        report = evaluate_few_shot(model, tokenizer, spec, ctx.data.splits["train"], rows, options,
                                   labels=ctx.data.labels)
        seconds = time.perf_counter() - start
    return {"metrics": test_metrics(rows["label"], report.probabilities(), ctx.data.num_labels),
            "n_train": shots * ctx.data.num_labels, "n_test": len(rows), "train_time_s": 0.0,
            "inference_s_per_example": seconds / max(1, len(rows)), "trainable_parameters": 0,
            "total_parameters": int(count_parameters(model)["total"]), "peak_memory_mb": memory.peak_mb,
            "memory_kind": memory.kind, "shots_per_class": shots, "spec": spec.name, "spec_version": spec.version,
            "raw_and_calibrated": report.runs[0].metrics}


def few_shot_strategy() -> Strategy:
    """In-context few-shot prompting of a causal LM with :mod:`tlnlp.fewshot` (calibrated, shared prefix)."""
    return Strategy(name="few_shot", kind="few_shot", run=_few_shot_run, settings=_few_shot_settings,
                    description="few-shot prompting of a causal LM: k demonstrations per class (at most "
                                "fewshot_shots), contextual calibration")


STRATEGIES.register("few_shot", few_shot_strategy())
