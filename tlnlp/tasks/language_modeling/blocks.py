"""Language-model training inputs: texts packed into blocks, the masking/shifting collator, a sparse MLM loss.

:func:`tokenize_for_lm` turns texts into fixed-length blocks (texts concatenated, as in the Hugging Face
``run_mlm``/``run_clm`` examples), and :func:`lm_collator` masks 15% of the tokens for masked LMs (80% ``[MASK]``,
10% random, 10% kept; :class:`SeededMaskingCollator`, whose masks a resumed run redraws exactly) or shifts labels
for causal LMs. The (pseudo-)perplexity scores are in :mod:`tlnlp.tasks.language_modeling.scoring`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import datasets
import torch
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase, TrainerCallback

__all__ = ["MLM_PROBABILITY", "MaskingEpochCallback", "SeededMaskingCollator", "SparseMaskedLMLoss", "encode_texts",
           "lm_collator", "tokenize_for_lm"]

logger = logging.getLogger(__name__)

#: Share of tokens masked for masked-LM training (BERT's 15%).
MLM_PROBABILITY = 0.15
_ENCODE_BATCH = 1000


def encode_texts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int | None,
                 special_tokens_mask: bool = False) -> dict[str, list[list[int]]]:
    """Token ids of each text (batched), optionally with the special-tokens mask; ``max_length`` truncates."""
    out: dict[str, list[list[int]]] = {"input_ids": []}
    if special_tokens_mask:
        out["special_tokens_mask"] = []
    for start in range(0, len(texts), _ENCODE_BATCH):
        enc = tokenizer(list(texts[start:start + _ENCODE_BATCH]), truncation=max_length is not None,
                        max_length=max_length, return_special_tokens_mask=special_tokens_mask)
        for key in out:
            out[key].extend(enc[key])
    return out


def tokenize_for_lm(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, max_seq_length: int,
                    objective: str) -> datasets.Dataset:
    """Tokenize texts and pack them into blocks of ``max_seq_length`` tokens.

    Masked LM: each text is encoded with its special tokens (``[CLS] ... [SEP]``), then texts are concatenated
    and cut into blocks. Causal LM: each text is followed by the EOS token (so the model learns where texts end),
    then concatenated and cut. The last, shorter block is kept (the collator pads it).

    Args:
        texts: The training texts.
        tokenizer: The model's tokenizer.
        max_seq_length: Tokens per block.
        objective: ``"mlm"`` or ``"clm"``.

    Returns:
        A dataset with ``input_ids`` (and ``special_tokens_mask`` for MLM), one row per block.

    Raises:
        ValueError: Unknown objective, no texts, or ``max_seq_length`` < 2.
    """
    if objective not in ("mlm", "clm"):
        raise ValueError(f"objective={objective!r} must be 'mlm' or 'clm'.")
    if not texts:
        raise ValueError("No texts to tokenize for language modelling.")
    if max_seq_length < 2:
        raise ValueError(f"max_seq_length={max_seq_length} must be at least 2.")
    mlm = objective == "mlm"
    enc = encode_texts(tokenizer, texts, None, special_tokens_mask=mlm)  # long texts span several blocks
    ids: list[int] = []
    special: list[int] = []
    eos = tokenizer.eos_token_id
    for row, text_ids in enumerate(enc["input_ids"]):
        ids.extend(text_ids)
        if mlm:
            special.extend(enc["special_tokens_mask"][row])
        elif eos is not None and (not text_ids or text_ids[-1] != eos):
            ids.append(eos)
    columns: dict[str, list[list[int]]] = {"input_ids": []}
    if mlm:
        columns["special_tokens_mask"] = []
    for start in range(0, len(ids), max_seq_length):
        block = ids[start:start + max_seq_length]
        if len(block) < 2:
            continue
        columns["input_ids"].append(block)
        if mlm:
            columns["special_tokens_mask"].append(special[start:start + max_seq_length])
    logger.info("Packed %d texts (%d tokens) into %d blocks of up to %d tokens for %s.", len(texts), len(ids),
                len(columns["input_ids"]), max_seq_length, "masked LM" if mlm else "causal LM")
    return datasets.Dataset.from_dict(columns)


@dataclass
class SeededMaskingCollator(DataCollatorForLanguageModeling):
    """The masked-LM collator, with masks that depend on the seed, the epoch and the batch, not on the global RNG.

    The stock collator draws its masks from the global torch RNG, and the Trainer's data loader collates one batch
    ahead: the RNG state a checkpoint holds has already drawn the next batch's masks, so a run resumed from it masks
    that batch, and every later one, otherwise than the uninterrupted run. Here each batch draws from a generator
    seeded by a hash of ``mask_seed``, ``epoch`` and the batch's token ids: a resumed run masks every batch as the
    uninterrupted run did (in any process or data-loader worker), and each epoch masks the rows afresh (dynamic
    masking). :class:`MaskingEpochCallback` keeps ``epoch`` at the Trainer's epoch.

    Attributes:
        mask_seed: The run's seed.
        epoch: The epoch being collated.
    """

    mask_seed: int = 0
    epoch: int = 0

    def torch_mask_tokens(self, inputs: Any, special_tokens_mask: Any | None = None,
                          offset_mapping: Any | None = None) -> tuple[Any, Any]:
        """The stock masking, drawn from this batch's own generator."""
        key = f"{self.mask_seed}:{self.epoch}".encode()
        digest = hashlib.blake2b(inputs.cpu().numpy().tobytes(), digest_size=8, key=key).digest()
        self.generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
        return super().torch_mask_tokens(inputs, special_tokens_mask, offset_mapping)


class MaskingEpochCallback(TrainerCallback):
    """Sets a :class:`SeededMaskingCollator`'s ``epoch`` when each epoch (or a resumed one) begins."""

    def __init__(self, collator: SeededMaskingCollator) -> None:
        self.collator = collator

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """The whole epochs done (a resumed run's state holds a fractional epoch)."""
        self.collator.epoch = int(state.epoch or 0)


def lm_collator(tokenizer: PreTrainedTokenizerBase, objective: str, mlm_probability: float = MLM_PROBABILITY,
                seed: int = 0) -> DataCollatorForLanguageModeling:
    """The batch collator for LM training: dynamic padding plus masking (MLM) or shifted labels (CLM).

    Args:
        tokenizer: The model's tokenizer (needs a pad token; a mask token for MLM).
        objective: ``"mlm"`` or ``"clm"``.
        mlm_probability: Share of tokens selected for masking (MLM only).
        seed: Seed of the masks (MLM only; see :class:`SeededMaskingCollator`).

    Returns:
        A :class:`SeededMaskingCollator` (MLM) or a ``DataCollatorForLanguageModeling`` (CLM).
    """
    if not 0 < mlm_probability < 1:
        raise ValueError(f"mlm_probability={mlm_probability!r} must be in (0, 1); BERT uses 0.15.")
    if objective == "mlm":
        return SeededMaskingCollator(tokenizer, mlm=True, mlm_probability=mlm_probability, mask_seed=int(seed))
    return DataCollatorForLanguageModeling(tokenizer, mlm=False)


class SparseMaskedLMLoss:
    """Masked-LM training that projects only the masked positions onto the vocabulary.

    A masked LM's loss looks at the ~15% masked tokens, yet the model projects every position onto the whole
    vocabulary (for MiniLM about half the compute of a step). Attached to a model whose LM head ends in its
    output embeddings (BERT, RoBERTa, DistilBERT, ...), three hooks take the labels out of the forward call, keep
    only the labelled positions at the input of the output projection, and compute the same cross-entropy (mean
    over the labelled tokens) from those logits; the model's weights and saved files are unchanged. Calls without
    labels (evaluation, pseudo-perplexity) are untouched.

    Example:
        >>> with SparseMaskedLMLoss(model):  # doctest: +SKIP
        ...     trainer.train()
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        projection = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if not isinstance(projection, torch.nn.Module):
            raise ValueError(f"{type(model).__name__} has no output embeddings to restrict; train it without "
                             "SparseMaskedLMLoss.")
        self.projection = projection
        self._mask: torch.Tensor | None = None
        self._targets: torch.Tensor | None = None
        self._handles: list[Any] = []

    def _take_labels(self, module: torch.nn.Module, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        labels = kwargs.get("labels")
        if labels is None:
            return None
        kwargs = {k: v for k, v in kwargs.items() if k != "labels"}
        self._mask = labels != -100
        self._targets = labels[self._mask]
        return args, kwargs

    def _keep_labelled(self, module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if self._mask is None or args[0].dim() != 3:
            return None
        return (args[0][self._mask.to(args[0].device)].unsqueeze(0), *args[1:])

    def _loss(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        if self._mask is None:
            return None
        logits, targets = output["logits"][0], self._targets.to(output["logits"].device)
        self._mask = self._targets = None
        output["loss"] = torch.nn.functional.cross_entropy(logits.float(), targets)
        return output

    def attach(self) -> SparseMaskedLMLoss:
        """Register the hooks (idempotent); returns self."""
        if not self._handles:
            self._handles = [
                self.model.register_forward_pre_hook(self._take_labels, with_kwargs=True),
                self.projection.register_forward_pre_hook(self._keep_labelled),
                self.model.register_forward_hook(self._loss, with_kwargs=True),
            ]
        return self

    def detach(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._mask = self._targets = None

    def __enter__(self) -> SparseMaskedLMLoss:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()
