"""LM domain adaptation (ULMFiT stage 2): train on unlabelled text, report (pseudo-)perplexity, write the run."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from transformers import TrainerCallback

from tlnlp.methods import apply_method
from tlnlp.runs.context import RunContext, TrainedRun
from tlnlp.runs.finish import finish
from tlnlp.tasks import TASKS
from tlnlp.tasks.language_modeling.blocks import MaskingEpochCallback, SeededMaskingCollator, SparseMaskedLMLoss
from tlnlp.tasks.language_modeling.model import load_language_model
from tlnlp.tasks.language_modeling.scoring import language_model_score
from tlnlp.training import build_trainer

__all__ = ["LmRunOptions", "run_lm_adaptation"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LmRunOptions:
    """How an LM-adaptation run trains and scores.

    Attributes:
        objective: ``"auto"`` (masked LM when the architecture has one, else causal), ``"mlm"`` or ``"clm"``.
        max_seq_length: Tokens per training block and per scored text.
        mlm_probability: Share of tokens masked (masked LM).
        perplexity_max_texts: Held-out texts scored before and after (None: all).
        resume_from_checkpoint: Checkpoint folder to resume from.
        config_objects: The parsed argument objects, for ``run_config.yaml``.
        recipe: The recipe that ran (named by the card's reproduce command).
        search: A hyperparameter search run before training (:func:`tlnlp.search.search_hook`), called with the
            run's parts once the text is tokenized; the trials train on the training blocks and are scored by
            their loss on the held-out blocks (never by perplexity, which is measured before and after only).
    """

    objective: str = "auto"
    max_seq_length: int = 128
    mlm_probability: float = 0.15
    perplexity_max_texts: int | None = 500
    resume_from_checkpoint: str | None = None
    config_objects: tuple[Any, ...] = ()
    recipe: str = "lm_adaptation"
    search: Callable[[Mapping[str, Any]], Any] | None = None


class _SameEvaluationMasks(TrainerCallback):
    """A search trial's held-out loss uses the masks of epoch 0, whatever its epochs: trials compare alike."""

    def __init__(self, collator: SeededMaskingCollator) -> None:
        self.collator = collator

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Evaluation follows training in a trial."""
        self.collator.epoch = 0


def _trial_model(model_args: Any, objective: str) -> Any:
    """A search trial's fresh language model (masked LM: with the same sparse loss as the run's training)."""
    model = load_language_model(model_args, objective).model
    if objective == "mlm" and model.get_output_embeddings() is not None:
        SparseMaskedLMLoss(model).attach()  # the trial's model is dropped after it, hooks and all
    return model


def _search(options: LmRunOptions, parts: dict[str, Any], collator: Any, objective: str) -> Any:
    """The search's outcome (or None without one): trials as this run trains, scored on held-out blocks."""
    if options.search is None:
        return None
    callbacks = [MaskingEpochCallback(collator), _SameEvaluationMasks(collator)] if isinstance(
        collator, SeededMaskingCollator) else []
    model_args = parts["model_args"]
    return options.search({**parts, "task": TASKS.get("language-modeling"), "default_metric": "loss",
                           "load_model": lambda: _trial_model(model_args, objective),
                           "trainer_kwargs": {"data_collator": collator, "callbacks": callbacks}})


def _score(model: Any, tokenizer: Any, texts: list[str], objective: str, options: LmRunOptions,
           show: bool) -> float:
    found = language_model_score(model, tokenizer, texts, objective, max_length=options.max_seq_length,
                                 show_progress=show)
    return float(next(iter(found.values())))


def run_lm_adaptation(model_args: Any, text: Any, method_args: Any, train_args: Any,
                      options: LmRunOptions | None = None) -> dict[str, float]:
    """Continue pretraining a backbone on unlabelled text and report held-out (pseudo-)perplexity before and after.

    Masked LM (15% masking) for encoders, causal LM for decoders
    (:func:`tlnlp.tasks.language_modeling.model.load_language_model`); the method's options (e.g. ULMFiT's
    discriminative rates, slanted triangular schedule, head warm-up) apply as in any training run. The output
    folder is an ordinary model folder: it loads in the classification recipe via ``--model_name_or_path``. The
    run ends in :func:`tlnlp.runs.finish`, which also writes ``lm_results.json``.

    Args:
        model_args: The backbone to adapt.
        text: :class:`tlnlp.data.TextData` (training and held-out texts).
        method_args: ``MethodArgs`` (method and its options).
        train_args: Training arguments; ``output_dir`` receives the adapted model.
        options: Objective, block length, masking, scoring and resume settings.

    Returns:
        ``train_*`` metrics, ``perplexity_before``/``perplexity_after`` (pseudo-perplexity for masked LMs),
        ``lm_objective_mlm``, ``lm_head_was_new`` and ``lm_held_out_texts``.
    """
    options = options or LmRunOptions()
    task = TASKS.get("language-modeling")
    loaded = load_language_model(model_args, options.objective)
    model, tokenizer, objective = loaded.model, loaded.tokenizer, loaded.objective
    if loaded.head_is_new and not getattr(method_args, "head_warmup_steps", 0):
        logger.warning("The %s head is new and --head_warmup_steps is 0: the lower layers start training against "
                       "an untrained head.", objective.upper())
    block_args = SimpleNamespace(max_seq_length=options.max_seq_length)
    with train_args.main_process_first(desc="tokenize"):
        blocks = task.tokenize(text, tokenizer, block_args, objective=objective)
    collator = task.data_collator(tokenizer, objective, options.mlm_probability, seed=train_args.seed)
    searched = _search(options, {"data": text, "model_args": model_args, "method_args": method_args,
                                 "train_args": train_args, "tokenizer": tokenizer, "datasets": blocks},
                       collator, objective)  # sets the best values on the arguments
    prepared = apply_method(model, method_args)
    held_out = text.validation[:options.perplexity_max_texts] if options.perplexity_max_texts else text.validation
    prepared.model.to(train_args.device)
    show = train_args.process_index == 0
    before = _score(prepared.model, tokenizer, held_out, objective, options, show)
    logger.info("Held-out %s before adaptation: %.3f", objective, before)
    epochs = [MaskingEpochCallback(collator)] if isinstance(collator, SeededMaskingCollator) else []
    trainer = build_trainer(prepared, tokenizer, blocks, train_args, data_collator=collator, callbacks=epochs)
    sparse = (SparseMaskedLMLoss(prepared.model) if objective == "mlm"
              and prepared.model.get_output_embeddings() is not None else contextlib.nullcontext())
    with sparse:  # masked LM: project only the masked positions onto the vocabulary (same loss, less compute)
        train_result = trainer.train(resume_from_checkpoint=options.resume_from_checkpoint)
    after = _score(trainer.model, tokenizer, held_out, objective, options, show)
    logger.info("Held-out %s after adaptation: %.3f", objective, after)
    scores = {"perplexity_before": before, "perplexity_after": after}
    measure = "pseudo_perplexity" if objective == "mlm" else "perplexity"
    return finish(RunContext(
        output_dir=train_args.output_dir, recipe=options.recipe, task=task, data=text,
        base_model=str(model_args.model_name_or_path), config_objects=options.config_objects,
        trained=TrainedRun(trainer, train_result, blocks, prepared),
        results={**scores, "lm_objective_mlm": float(objective == "mlm"),
                 "lm_head_was_new": float(loaded.head_is_new), "lm_held_out_texts": float(len(held_out)),
                 **(searched.results if searched else {})},
        sections=searched.sections if searched else {},
        files={"lm_results.json": {**scores, "objective": objective, "measure": measure,
                                   "head_was_new": loaded.head_is_new, "held_out_texts": len(held_out)}},
    ))
