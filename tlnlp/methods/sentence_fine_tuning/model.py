"""The module that ``--method sentence_fine_tuning`` trains: a sentence encoder and a linear head, one loss.

:class:`EncoderWithHead` is a plain ``torch.nn.Module`` that the transformers ``Trainer`` trains: tokenised texts in,
``normalize(encoder(texts)) @ W.T + b`` out, with the cross-entropy and, when the head is anchored at the zero-shot
prototypes, the penalty ``strength / (2 * rows) * ||W - W_prior||^2`` (per batch, so that over an epoch it is the
summed cross-entropy plus ``strength/2 * ||W - W_prior||^2``, divided by the rows: the anchored logistic head's
objective, with the encoder trained too). :func:`tokenize_rows` builds its training set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np
import torch
from transformers.modeling_outputs import SequenceClassifierOutput

__all__ = ["EncoderWithHead", "encoder_max_length", "tokenize_rows"]


def encoder_max_length(encoder: Any, max_length: int | None) -> int | None:
    """The token limit of the training texts: ``max_length`` (``--max_seq_length``) within the encoder's own."""
    own = encoder.max_seq_length
    if max_length is None:
        return own
    return min(max_length, own) if own else max_length


def _prompt(encoder: Any) -> str:
    """The encoder's default prompt (e.g. ``"query: "`` for E5-style models), which ``encode`` prepends too."""
    name = getattr(encoder, "default_prompt_name", None)
    return (getattr(encoder, "prompts", None) or {}).get(name, "") if name else ""


def tokenize_rows(encoder: Any, texts: Sequence[str], labels: Sequence[int],
                  max_length: int | None) -> datasets.Dataset:
    """``input_ids``/``attention_mask`` (and ``token_type_ids``) and ``labels`` of the training rows."""
    prompt, limit = _prompt(encoder), encoder_max_length(encoder, max_length)
    rows = datasets.Dataset.from_dict({"text": [prompt + text for text in texts],
                                       "labels": [int(y) for y in labels]})
    return rows.map(lambda batch: encoder.tokenizer(batch["text"], truncation=True, max_length=limit),
                    batched=True, remove_columns=["text"])


class EncoderWithHead(torch.nn.Module):
    """A ``SentenceTransformer`` and a linear head over its unit-length embeddings, trained as one model.

    Args:
        encoder: The sentence encoder (trained in place).
        start: ``labels x dim`` starting weights of the head (the prototypes), or None for ``nn.Linear``'s own
            random start.
        num_labels: Rows of the head.
        anchor: ``(prior weights, strength, training rows)``: pull the head towards the prior, or None.
    """

    def __init__(self, encoder: Any, num_labels: int, start: np.ndarray | None = None,
                 anchor: tuple[np.ndarray, float, int] | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(encoder.get_embedding_dimension(), num_labels)
        if start is not None:
            with torch.no_grad():
                self.head.weight.copy_(torch.as_tensor(start, dtype=torch.float32))
                self.head.bias.zero_()
        self.pull = 0.0
        self.register_buffer("prior", torch.zeros_like(self.head.weight), persistent=False)
        if anchor is not None:
            prior, strength, rows = anchor
            self.prior.copy_(torch.as_tensor(prior, dtype=torch.float32))
            self.pull = float(strength) / (2.0 * max(1, rows))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> SequenceClassifierOutput:
        """Logits of the batch; with ``labels``, the loss (cross-entropy plus the pull towards the prior)."""
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            features["token_type_ids"] = token_type_ids
        embeddings = torch.nn.functional.normalize(self.encoder(features)["sentence_embedding"], dim=-1)
        logits = self.head(embeddings)
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(logits, labels)
            if self.pull:
                loss = loss + self.pull * ((self.head.weight - self.prior) ** 2).sum()
        return SequenceClassifierOutput(loss=loss, logits=logits)
