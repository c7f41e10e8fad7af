"""NLI zero-shot classification: every (text, hypothesis) pair in length-sorted, dynamically padded batches.

Scores are those of ``transformers.pipeline("zero-shot-classification")`` for the same model, texts, labels,
template and ``multi_label`` setting: single-label scores are the softmax of the entailment logits over the
candidate labels; multi-label scores (and any call with one label) are the softmax of entailment against
contradiction for each label on its own. The pipeline runs one pair per forward pass; here all pairs of all texts
and labels share batches of similar length, so the cost is one forward pass per ``batch_size`` pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase

from tlnlp.config import ModelArgs
from tlnlp.models import load_tokenizer, resolve_model_path
from tlnlp.zeroshot.args import ZeroShotError
from tlnlp.zeroshot.batching import resolve_device, run_sorted
from tlnlp.zeroshot.options import ScoringOptions
from tlnlp.zeroshot.specs import check_template

__all__ = [
    "DEFAULT_TEMPLATE",
    "contradiction_id",
    "encode_pairs",
    "entailment_id",
    "load_nli_model",
    "nli_logits",
    "score_nli",
]

logger = logging.getLogger(__name__)

#: The transformers zero-shot pipeline's default hypothesis template.
DEFAULT_TEMPLATE = "This example is {}."
_CHUNK_PAIRS = 16384  # pairs tokenised and sorted together: bounds memory for very many texts x labels


def entailment_id(config: Any) -> int:
    """The class id of entailment: the first name in ``config.label2id`` starting with "entail" (any case).

    This is the rule the transformers zero-shot pipeline uses, so 2-way (entailment / not_entailment) and
    3-way (entailment / neutral / contradiction) heads both work.

    Raises:
        ZeroShotError: No class name starts with "entail"; the message shows ``label2id`` and the fix.
    """
    for label, index in (getattr(config, "label2id", None) or {}).items():
        if str(label).lower().startswith("entail"):
            return int(index)
    raise ZeroShotError(
        f"The model's config.label2id={dict(getattr(config, 'label2id', {}) or {})} names no entailment class, "
        "so it cannot score hypotheses. Use an NLI model, or set id2label/label2id on its config so the "
        "entailment class is called 'entailment' (e.g. {0: 'entailment', 1: 'not_entailment'}), or pass "
        "entailment_index=<class id>."
    )


def contradiction_id(entail: int, num_classes: int) -> int:
    """The class played against entailment for multi-label scores: the last class if entailment is 0, else 0."""
    return num_classes - 1 if entail == 0 else 0


def _ensure_pad_token(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # as the transformers pipeline does
        logger.info("The tokenizer has no pad token; padding with %r.", tokenizer.eos_token)
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id  # decoder heads find the last token through it


def encode_pairs(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], hypotheses: Sequence[str],
                 max_length: int | None = None) -> list[dict[str, list[int]]]:
    """Tokenise (text, hypothesis) pairs without padding; only the text is truncated, as in the pipeline.

    ``max_length`` None truncates to ``tokenizer.model_max_length``. A pair whose hypothesis alone is too long to
    truncate the text only is truncated longest-first instead (the pipeline would fail on it).
    """
    kwargs: dict[str, Any] = {"truncation": "only_first", "padding": False}
    if max_length is not None:
        kwargs["max_length"] = max_length
    try:
        encoded = tokenizer(list(texts), list(hypotheses), **kwargs)
        return [{k: encoded[k][i] for k in encoded} for i in range(len(texts))]
    except Exception as err:  # noqa: BLE001 - tokenizers raise plain exceptions for impossible truncation
        if "too short" not in str(err) and "truncat" not in str(err).lower():
            raise
    logger.warning("Some hypotheses are too long to truncate the text only (max_length=%s); those pairs are "
                   "truncated longest-first.", max_length)
    rows = []
    for text, hypothesis in zip(texts, hypotheses, strict=True):
        try:
            encoded = tokenizer(text, hypothesis, **kwargs)
        except Exception:  # noqa: BLE001
            encoded = tokenizer(text, hypothesis, **{**kwargs, "truncation": "longest_first"})
        rows.append(dict(encoded))
    return rows


def nli_logits(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    hypotheses: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int | None = None,
    show_progress: bool = False,
) -> np.ndarray:
    """Logits of the NLI head for every (text, hypothesis) pair: shape ``(texts, hypotheses, classes)``."""
    _ensure_pad_token(model, tokenizer)
    texts, hypotheses = list(texts), list(hypotheses)
    total = len(texts) * len(hypotheses)
    out = np.zeros((len(texts), len(hypotheses), model.config.num_labels), dtype=np.float32)
    per_chunk = max(1, _CHUNK_PAIRS // max(1, len(hypotheses)))
    with tqdm(total=total, desc="Scoring pairs", unit="pair", disable=not show_progress) as bar:
        for start in range(0, len(texts), per_chunk):
            chunk = texts[start:start + per_chunk]
            premises = [t for t in chunk for _ in hypotheses]
            features = encode_pairs(tokenizer, premises, hypotheses * len(chunk), max_length)
            logits = run_sorted(model, tokenizer, features, lambda output, _: output.logits,
                                batch_size=batch_size, progress=bar)
            out[start:start + len(chunk)] = logits.reshape(len(chunk), len(hypotheses), -1)
    return out


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def _hypotheses(labels: Sequence[str], templates: list[str], descriptions: Mapping[str, str] | None) -> list[str]:
    descriptions = descriptions or {}
    unknown = sorted(set(descriptions) - set(labels))
    if unknown:
        logger.warning("label_descriptions for %s match no candidate label; they are not used.", unknown)
    return [template.format(descriptions.get(label, label)) for template in templates for label in labels]


def score_nli(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    hypothesis_template: str | Sequence[str] = DEFAULT_TEMPLATE,
    label_descriptions: Mapping[str, str] | None = None,
    options: ScoringOptions | None = None,
) -> np.ndarray:
    """Zero-shot scores of every text for every candidate label with an NLI model.

    Each label becomes a hypothesis (``template.format(description)``) paired with each text. With one template
    and no descriptions the scores equal those of ``pipeline("zero-shot-classification")`` (to float precision).

    Args:
        model: Any sequence-classification NLI model (2- or 3-way head) whose config names the entailment class.
        tokenizer: Its tokenizer.
        texts: The texts to classify (premises).
        labels: Candidate class names, in the column order of the result.
        hypothesis_template: A template with a ``{}`` slot, or several: their scores are averaged.
        label_descriptions: Class name -> the words put into the template (default: the class name).
        options: Reads ``multi_label`` (score each label on its own, entailment vs contradiction, instead of a
            softmax over labels; one candidate label is always scored this way, as in the pipeline),
            ``batch_size`` (pairs per forward pass), ``max_length`` (truncate texts so each pair fits; default:
            the tokenizer's maximum), ``entailment_index`` (class id of entailment, for configs whose label names
            do not say it) and ``show_progress`` (default: ``ScoringOptions()``).

    Returns:
        ``(len(texts), len(labels))`` float64 scores: rows sum to 1 for single-label scoring; each entry is a
        probability for multi-label scoring.

    Raises:
        ValueError: No texts or labels, a template without ``{}``, or no entailment class in the config.
    """
    options = options or ScoringOptions()
    templates = [hypothesis_template] if isinstance(hypothesis_template, str) else list(hypothesis_template)
    texts, labels = list(texts), list(labels)
    if not texts or not labels or not templates:
        raise ValueError(f"score_nli needs at least one text, label and template; got {len(texts)} texts, "
                         f"{len(labels)} labels, {len(templates)} templates.")
    for template in templates:
        check_template(template)
    entail = entailment_id(model.config) if options.entailment_index is None else int(options.entailment_index)
    num_classes = model.config.num_labels
    if not 0 <= entail < num_classes:
        raise ValueError(f"entailment_index={entail} is outside the model's {num_classes} classes.")
    hypotheses = _hypotheses(labels, templates, label_descriptions)
    logits = nli_logits(model, tokenizer, texts, hypotheses, batch_size=options.batch_size,
                        max_length=options.max_length, show_progress=options.show_progress).astype(np.float64)
    logits = logits.reshape(len(texts), len(templates), len(labels), num_classes)
    if options.multi_label or len(labels) == 1:
        pair = logits[..., [contradiction_id(entail, num_classes), entail]]
        scores = _softmax(pair, axis=-1)[..., 1]
    else:
        scores = _softmax(logits[..., entail], axis=-1)
    return scores.mean(axis=1)


def load_nli_model(
    model_name_or_path: str,
    *,
    device: str | torch.device | None = "auto",
    revision: str = "main",
    cache_dir: str | None = None,
    token: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load an NLI model (Hub id, local folder, ``bundled:`` name) and its tokenizer, ready for :func:`score_nli`.

    Safetensors weights only. The entailment class is checked at once, so a model without one fails here
    rather than after tokenising a dataset.

    Raises:
        ZeroShotError: The model's config names no entailment class.
    """
    args = ModelArgs(model_name_or_path=model_name_or_path, model_revision=revision, cache_dir=cache_dir, token=token,
                     trust_remote_code=trust_remote_code)
    path = resolve_model_path(model_name_or_path, revision=revision, cache_dir=cache_dir, token=token)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, use_safetensors=True, revision=revision, cache_dir=cache_dir, token=token or None,
        trust_remote_code=trust_remote_code)
    entailment_id(model.config)
    tokenizer = load_tokenizer(args, path)
    model.to(resolve_device(device)).eval()
    return model, tokenizer
