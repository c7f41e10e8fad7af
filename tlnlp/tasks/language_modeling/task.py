"""Language modelling (ULMFiT's LM stage: masked LM for encoders, causal LM for decoders) as a registered task.

It has no labels: its data is unlabelled text, its score the held-out (pseudo-)perplexity before and after
training, measured by the LM stage around training and handed to the output pipeline in ``ctx.results``
(``perplexity_before``, ``perplexity_after``, ``lm_objective_mlm``, ``lm_head_was_new``, ``lm_held_out_texts``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tlnlp.tasks.base import SavedModel, Task, register_task

__all__ = ["LanguageModelingTask"]

_MASKED_WORDS = ("fill-mask", "masked-lm", "masked_lm", "mlm")
_CAUSAL_WORDS = ("text-generation", "causal-lm", "causal_lm", "clm")
_CARD_METRICS = ("perplexity", "train_loss")
_OBJECTIVES = {
    "mlm": "Masked-language-model adaptation: pretraining continued on unlabelled target-domain text, a share of the "
           "tokens masked (15% by default).",
    "clm": "Causal-language-model adaptation: pretraining continued on unlabelled target-domain text (next-token "
           "prediction).",
}


def _objective(ctx: Any) -> str:
    """``"mlm"`` or ``"clm"``, from what the LM stage recorded."""
    return "mlm" if ctx.results.get("lm_objective_mlm") else "clm"


@register_task
class LanguageModelingTask(Task):
    """Unlabelled text -> a backbone adapted to it; packed blocks, masking or shifting collator, perplexity."""

    name = "language-modeling"
    pipeline_tag = "fill-mask"
    pipeline_tags = {**dict.fromkeys(_MASKED_WORDS, "fill-mask"), **dict.fromkeys(_CAUSAL_WORDS, "text-generation")}
    heads = ("ForMaskedLM", "ForCausalLM", "LMHeadModel")
    recipe = "lm_adaptation"
    head = "language-modelling head"

    def load_data(self, data_args: Any, seed: int | None = None, labelled_task: bool = False) -> Any:
        """Unlabelled texts (:class:`tlnlp.data.TextData`): of any source, or of a labelled task's training split.

        Args:
            data_args: The source.
            seed: Seed of the held-out split.
            labelled_task: Read ``data_args`` as a classification task and take its texts
                (:func:`~tlnlp.tasks.language_modeling.data.task_texts`).
        """
        # deferred: `import tlnlp.tasks` stays free of datasets and transformers
        from tlnlp.data.text import load_text_data
        from tlnlp.tasks.language_modeling.data import task_texts

        return task_texts(data_args, seed) if labelled_task else load_text_data(data_args, seed)

    def load_model(self, model_args: Any, data: Any = None, objective: str = "auto") -> tuple[Any, Any]:
        """The backbone with a masked- or causal-LM head.

        See :func:`~tlnlp.tasks.language_modeling.model.load_language_model`, which also says which objective and
        whether the head is new.
        """
        from tlnlp.tasks.language_modeling.model import load_language_model  # deferred: as in load_data

        loaded = load_language_model(model_args, objective)
        return loaded.model, loaded.tokenizer

    def tokenize(self, data: Any, tokenizer: Any, data_args: Any, objective: str = "mlm") -> Any:
        """The training and held-out texts packed into blocks of ``max_seq_length`` tokens."""
        from datasets import DatasetDict  # deferred: as in load_data

        from tlnlp.tasks.language_modeling.blocks import tokenize_for_lm  # deferred: as in load_data

        return DatasetDict({split: tokenize_for_lm(texts, tokenizer, data_args.max_seq_length, objective)
                            for split, texts in (("train", data.train), ("validation", data.validation))})

    def data_collator(self, tokenizer: Any, objective: str = "mlm", mlm_probability: float = 0.15,
                      seed: int = 0) -> Any:
        """Dynamic padding plus masking (MLM, seeded by ``seed``) or shifted labels (CLM)."""
        from tlnlp.tasks.language_modeling.blocks import lm_collator  # deferred: as in load_data

        return lm_collator(tokenizer, objective, mlm_probability, seed)

    def card_task(self, ctx: Any) -> str:
        """``fill-mask`` for a masked LM, ``text-generation`` for a causal one."""
        return self.pipeline_tags[_objective(ctx)]

    def card_sections(self, ctx: Any) -> dict[str, str]:
        """The held-out (pseudo-)perplexity before and after adaptation."""
        results, objective = ctx.results, _objective(ctx)
        measure = "pseudo-perplexity" if objective == "mlm" else "perplexity"
        held_out = int(results.get("lm_held_out_texts", 0))
        lines = [_OBJECTIVES[objective], f"Held-out {measure} on {held_out} texts (lower is better): "
                 f"before {results['perplexity_before']:.2f}, after {results['perplexity_after']:.2f}."]
        if results.get("lm_head_was_new"):
            lines.append("The checkpoint had no weights for the LM head; it was newly initialised, so the 'before' "
                         "figure measures an untrained head, not the backbone's knowledge of the domain.")
        return {"Language-model adaptation": "\n\n".join(lines)}

    def card_tags(self, ctx: Any) -> list[str]:
        """``lm-adaptation`` and the objective."""
        return ["lm-adaptation", _objective(ctx)]

    def card_metrics(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The perplexities and the training loss."""
        return {k: v for k, v in metrics.items() if k.startswith(_CARD_METRICS)}

    def environment(self, ctx: Any) -> dict[str, Any]:
        """The objective."""
        return {"lm_objective": _objective(ctx)}

    def pipeline(self, saved: SavedModel, device: int | str | None, kwargs: dict[str, Any]) -> Any:
        """``fill-mask`` for a masked LM, ``text-generation`` for a causal one (``transformers.pipeline``)."""
        from transformers import pipeline  # deferred: `import tlnlp.tasks` stays free of transformers

        masked = any("ForMaskedLM" in name for name in saved.architectures)
        model = saved.model if saved.model is not None else saved.source
        tokenizer = saved.tokenizer if saved.tokenizer is not None else saved.source
        tag = self.pipeline_tags["mlm" if masked else "clm"]
        return pipeline(tag, model=model, tokenizer=tokenizer, device=device, **kwargs)
