"""Load a backbone with an extractive question-answering head (start/end logits per token), and its tokenizer."""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForQuestionAnswering, PreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_outputs import QuestionAnsweringModelOutput

from tlnlp.config.args import ModelArgs
from tlnlp.models.loading import (
    ensure_pad_token,
    hub_kwargs,
    load_tokenizer,
    log_loading_info,
    quiet_load_report,
    refuse_pickle_only,
    resolve_dtype,
    resolve_model_path,
)

__all__ = ["fix_peft_question_answering", "load_question_answerer"]

logger = logging.getLogger(__name__)


def _check_fast(tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"The tokenizer of {name} is not a fast tokenizer; question answering needs the character "
                         "offsets that only fast (Rust) tokenizers give. Fix: pick a model whose tokenizer has a "
                         "tokenizer.json, or pass --tokenizer_name with a fast tokenizer of the same vocabulary.")


def load_question_answerer(model_args: ModelArgs) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``model_args.model_name_or_path`` with a question-answering head, and its (fast) tokenizer.

    A checkpoint without a QA head (e.g. a plain encoder such as the bundled MiniLM) gets a freshly
    initialised ``qa_outputs`` layer (logged). Only safetensors weights are loaded. With
    ``init_from_scratch`` the same architecture is built with random weights (no transfer).

    Args:
        model_args: Model name or path, revision, cache folder, token, remote-code permission, dtype.

    Returns:
        ``(model, tokenizer)``.

    Raises:
        ValueError: The tokenizer is not a fast tokenizer.
        OSError: No safetensors weights.
        HubUnreachableError: See :func:`tlnlp.models.resolve_model_path`.
    """
    path = resolve_model_path(model_args.model_name_or_path, revision=model_args.model_revision,
                              cache_dir=model_args.cache_dir, token=model_args.token)
    common = hub_kwargs(model_args)
    tokenizer = load_tokenizer(model_args, path)
    _check_fast(tokenizer, model_args.model_name_or_path)
    dtype = resolve_dtype(model_args.dtype) if model_args.dtype is not None else None
    if getattr(model_args, "init_from_scratch", False):
        config = AutoConfig.from_pretrained(path, **common)
        kwargs: dict[str, Any] = {"trust_remote_code": model_args.trust_remote_code}
        if dtype not in (None, "auto"):
            kwargs["dtype"] = dtype
        model = AutoModelForQuestionAnswering.from_config(config, **kwargs)
        logger.info("Built %s from %s's config with random weights (init_from_scratch: no transfer).",
                    type(model).__name__, model_args.model_name_or_path)
    else:
        refuse_pickle_only(path)
        load_kwargs: dict[str, Any] = {"use_safetensors": True, "output_loading_info": True, **common}
        if dtype is not None:
            load_kwargs["dtype"] = dtype
        with quiet_load_report():
            model, info = AutoModelForQuestionAnswering.from_pretrained(path, **load_kwargs)
        log_loading_info(model, info, model_args.model_name_or_path)
    ensure_pad_token(model, tokenizer)
    logger.info("Loaded %s (%s) for question answering; tokenizer pads on the %s.", model_args.model_name_or_path,
                type(model).__name__, tokenizer.padding_side)
    return model, tokenizer


def fix_peft_question_answering(model: Any) -> Any:
    """Make a PEFT question-answering model see the same positions and inputs as the plain model (in place).

    ``peft.PeftModelForQuestionAnswering`` has two gaps that make an adapter answer wrongly:

    * LoRA-family adapters: its ``forward`` drops ``token_type_ids`` and ``position_ids``, so a BERT-style model
      trains with every token in segment 0, then answers differently once merged or run as a plain model.
      Here they are handed to the base model.
    * prompt tuning and p-tuning prepend virtual tokens, so the start/end logits gain that many leading
      positions while the answer positions (labels) and the offsets still count real tokens only. Here the
      virtual positions are cut from the logits and the loss is computed on the real ones (the same loss as
      transformers' QA heads: mean of start and end cross-entropy, out-of-range positions ignored).

    Other models (and prefix tuning, which adds no positions) are returned unchanged.

    Args:
        model: Any model.

    Returns:
        The same model.
    """
    from peft import PeftModelForQuestionAnswering, PeftType  # deferred: peft is heavy; adapters only

    if not isinstance(model, PeftModelForQuestionAnswering):
        return model
    config = model.active_peft_config
    if not config.is_prompt_learning:
        model.forward = _segment_forward(model, model.forward)
    elif config.peft_type in (PeftType.PROMPT_TUNING, PeftType.P_TUNING):
        model.forward = _unprompted_forward(model.forward, int(config.num_virtual_tokens))
    return model


def _segment_forward(model: Any, original: Any) -> Any:
    def forward(*args: Any, token_type_ids: Any = None, position_ids: Any = None, **kwargs: Any) -> Any:
        if args or any(k in kwargs for k in model.special_peft_forward_args):
            return original(*args, token_type_ids=token_type_ids, position_ids=position_ids, **kwargs)
        kwargs.pop("task_ids", None)
        kwargs.setdefault("return_dict", True)
        extra = {k: v for k, v in (("token_type_ids", token_type_ids), ("position_ids", position_ids)) if v is not None}
        return model.base_model(**kwargs, **extra)

    return forward


def _unprompted_forward(original: Any, virtual: int) -> Any:
    def forward(*args: Any, start_positions: Any = None, end_positions: Any = None, **kwargs: Any) -> Any:
        kwargs["return_dict"] = True
        out = original(*args, **kwargs)
        start = out.start_logits[:, virtual:].contiguous()
        end = out.end_logits[:, virtual:].contiguous()
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = start.size(1)
            cross_entropy = torch.nn.CrossEntropyLoss(ignore_index=ignored)
            loss = (cross_entropy(start, start_positions.clamp(0, ignored))
                    + cross_entropy(end, end_positions.clamp(0, ignored))) / 2
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start, end_logits=end,
                                            hidden_states=out.hidden_states, attentions=out.attentions)

    return forward
