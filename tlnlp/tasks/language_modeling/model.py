"""Load a backbone with a language-modelling head: masked LM for encoders, causal LM for decoders.

Used for target-domain LM adaptation (ULMFiT's second stage) and for perplexity checks. The objective is chosen
from the model's config (``lm_objective="auto"``): architectures that have a masked-LM class (BERT, RoBERTa,
DistilBERT, ...) train as masked LMs, the others (GPT-2, Llama, ...) as causal LMs.

Some checkpoints ship without the LM head's weights: the bundled all-MiniLM-L6-v2 (a sentence-embedding model)
has no masked-LM head, so its ``cls.predictions`` transform and bias are newly initialised (the decoder is tied to
the word embeddings). :class:`LoadedLM` lists those new weights so a recipe can warm the head up first and report
the "before" perplexity for what it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from tlnlp.config.args import ModelArgs
from tlnlp.models.loading import (
    ensure_pad_token,
    hub_kwargs,
    load_tokenizer,
    quiet_load_report,
    refuse_pickle_only,
    resolve_dtype,
    resolve_model_path,
    short_names,
)

__all__ = ["LM_OBJECTIVES", "LoadedLM", "choose_lm_objective", "load_language_model"]

logger = logging.getLogger(__name__)

#: ``--lm_objective`` choices.
LM_OBJECTIVES = ("auto", "mlm", "clm")


@dataclass
class LoadedLM:
    """A language model ready for adaptation.

    Attributes:
        model: ``AutoModelForMaskedLM`` or ``AutoModelForCausalLM``.
        tokenizer: Its tokenizer (decoders get a pad token).
        objective: ``"mlm"`` or ``"clm"``.
        new_head_weights: Names of LM-head weights the checkpoint did not have (randomly initialised).
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    objective: str
    new_head_weights: list[str] = field(default_factory=list)

    @property
    def head_is_new(self) -> bool:
        """Whether the LM head (beyond tied embeddings) starts from random weights."""
        return bool(self.new_head_weights)


def choose_lm_objective(config: Any, requested: str = "auto") -> str:
    """Decide between masked and causal language modelling for a model config.

    Args:
        config: A transformers ``PretrainedConfig``.
        requested: ``"auto"``, ``"mlm"`` or ``"clm"``.

    Returns:
        ``"mlm"`` or ``"clm"``: with ``"auto"``, ``"mlm"`` when the architecture has a masked-LM class and is
        not configured as a decoder, else ``"clm"``.

    Raises:
        ValueError: ``requested`` is not one of :data:`LM_OBJECTIVES`, or ``"mlm"`` for an architecture without a
            masked-LM class.
    """
    if requested not in LM_OBJECTIVES:
        raise ValueError(f"lm_objective={requested!r} is not valid; choose one of: {', '.join(LM_OBJECTIVES)}.")
    has_mlm = getattr(config, "model_type", None) in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    if requested == "mlm" and not has_mlm:
        raise ValueError(f"lm_objective='mlm' but {config.model_type!r} models have no masked-LM class in "
                         "transformers; use --lm_objective clm (or auto).")
    if requested != "auto":
        return requested
    return "mlm" if has_mlm and not getattr(config, "is_decoder", False) else "clm"


def _new_head_weights(model: PreTrainedModel, info: dict[str, Any]) -> list[str]:
    prefix = model.base_model_prefix + "."
    missing = set(info.get("missing_keys") or [])
    return sorted(key for key in missing if not key.startswith(prefix))


def load_language_model(model_args: ModelArgs, objective: str = "auto") -> LoadedLM:
    """Load a backbone with a masked- or causal-LM head, and its tokenizer (safetensors only).

    Args:
        model_args: Model name or path (``bundled:minilm``, ``bundled:smollm2``, a folder or a Hub id), revision,
            cache, token, remote-code permission, dtype; ``init_from_scratch`` builds random weights.
        objective: ``"auto"``, ``"mlm"`` or ``"clm"`` (see :func:`choose_lm_objective`).

    Returns:
        The loaded model, tokenizer, objective and the list of newly initialised head weights.

    Raises:
        ValueError: Bad ``objective``.
        OSError: No safetensors weights.
        HubUnreachableError: See :func:`tlnlp.models.resolve_model_path`.
    """
    path = resolve_model_path(model_args.model_name_or_path, revision=model_args.model_revision,
                              cache_dir=model_args.cache_dir, token=model_args.token)
    common = hub_kwargs(model_args)
    config = AutoConfig.from_pretrained(path, **common)
    chosen = choose_lm_objective(config, objective)
    auto_cls = AutoModelForMaskedLM if chosen == "mlm" else AutoModelForCausalLM
    dtype = resolve_dtype(model_args.dtype) if model_args.dtype is not None else None
    if getattr(model_args, "init_from_scratch", False):
        kwargs = {"trust_remote_code": model_args.trust_remote_code}
        model = auto_cls.from_config(config, **kwargs, **({"dtype": dtype} if dtype not in (None, "auto") else {}))
        new: list[str] = [name for name, _ in model.named_parameters()]
        logger.info("Built %s from %s's config with random weights (init_from_scratch).", type(model).__name__,
                    model_args.model_name_or_path)
    else:
        refuse_pickle_only(path)
        kwargs = {"config": config, "use_safetensors": True, "output_loading_info": True, **common}
        if dtype is not None:
            kwargs["dtype"] = dtype
        with quiet_load_report():
            model, info = auto_cls.from_pretrained(path, **kwargs)
        new = _new_head_weights(model, info)
        if new:
            logger.warning("%s has no %s head weights; newly initialised: %s. Its 'before' perplexity reflects "
                           "an untrained head; consider --head_warmup_steps.", model_args.model_name_or_path,
                           "masked-LM" if chosen == "mlm" else "causal-LM", short_names(new))
    tokenizer = load_tokenizer(model_args, path)
    ensure_pad_token(model, tokenizer)
    if chosen == "mlm" and tokenizer.mask_token is None:
        raise ValueError(f"{model_args.model_name_or_path}'s tokenizer has no mask token, so it cannot be trained "
                         "as a masked LM; use --lm_objective clm.")
    logger.info("Loaded %s as a %s language model (%s).", model_args.model_name_or_path,
                "masked" if chosen == "mlm" else "causal", type(model).__name__)
    return LoadedLM(model=model, tokenizer=tokenizer, objective=chosen, new_head_weights=new)
