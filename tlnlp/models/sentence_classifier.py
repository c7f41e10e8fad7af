"""A sentence encoder with a linear classification head over its embeddings, saved as safetensors.

What ``--method feature_extraction`` and ``--method setfit`` train and save: a sentence-transformers model (its own
pooling, normalisation and length) whose L2-normalised sentence embeddings a linear head (logistic regression, or
a torch linear layer) turns into one logit per label. The folder is a sentence-transformers model folder plus
``classifier_head.safetensors`` (``weight``: labels x dim, ``bias``: labels) and ``classifier_head.json`` (label
names, head kind); nothing is pickled.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sentence_transformers import SentenceTransformer

__all__ = ["HEAD_CONFIG", "HEAD_WEIGHTS", "SentenceTransformerForSequenceClassification", "cut_to",
           "encode_normalized", "is_sentence_classifier"]

#: The head's weights and its description, beside the sentence-transformers files.
HEAD_WEIGHTS = "classifier_head.safetensors"
HEAD_CONFIG = "classifier_head.json"


def is_sentence_classifier(folder: str | Path) -> bool:
    """Whether ``folder`` holds a :class:`SentenceTransformerForSequenceClassification`."""
    return (Path(folder) / HEAD_CONFIG).is_file() and (Path(folder) / HEAD_WEIGHTS).is_file()


def encode_normalized(encoder: SentenceTransformer, texts: Sequence[str], *, batch_size: int = 32,
                      max_length: int | None = None, show_progress: bool = False, bf16: bool = False) -> np.ndarray:
    """Unit-length sentence embeddings ``(len(texts), dim)`` as float32; texts cut to ``max_length`` tokens.

    ``bf16`` encodes under bf16 autocast (what ``--bf16`` turns on for training): the matmuls run in bf16, the
    weights stay fp32, and the embeddings come back as float32.
    """
    with cut_to(encoder, max_length), torch.inference_mode(), \
            torch.autocast(encoder.device.type, dtype=torch.bfloat16, enabled=bf16):
        vectors = encoder.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=show_progress)
    return np.asarray(vectors, dtype=np.float32)


@contextlib.contextmanager
def cut_to(encoder: SentenceTransformer, max_length: int | None) -> Iterator[None]:
    """Inside, ``encoder`` cuts texts to ``max_length`` tokens (never beyond its own limit); after, its own limit.

    Training and encoding go through it alike, so a body trains on the texts as its embeddings will read them.
    """
    own = encoder.max_seq_length
    if max_length is not None:
        encoder.max_seq_length = min(max_length, own) if own else max_length
    try:
        yield
    finally:
        encoder.max_seq_length = own


class SentenceTransformerForSequenceClassification(torch.nn.Module):
    """A sentence encoder and a linear head: ``logits = normalize(encode(text)) @ weight.T + bias``.

    Attributes:
        encoder: The ``SentenceTransformer``.
        weight: ``labels x dim`` head weights.
        bias: ``labels`` head biases.
        labels: Label names, in id order.
        head: ``"logistic"`` or ``"linear"`` (how the head was trained; both are linear at inference).
        max_length: Texts are cut to this many tokens (None: the encoder's own maximum).
        bf16: Encode under bf16 autocast (set from the run's ``--bf16``; not saved: a loaded classifier encodes in
            fp32 until told otherwise).
    """

    def __init__(self, encoder: SentenceTransformer, weight: Any, bias: Any, labels: Sequence[str], *,
                 head: str = "logistic", max_length: int | None = None, bf16: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.weight = torch.nn.Parameter(torch.as_tensor(np.asarray(weight), dtype=torch.float32), requires_grad=False)
        self.bias = torch.nn.Parameter(torch.as_tensor(np.asarray(bias), dtype=torch.float32), requires_grad=False)
        self.labels = list(labels)
        self.head = head
        self.max_length = max_length
        self.bf16 = bf16
        if self.weight.shape[0] != len(self.labels) or self.bias.shape != (len(self.labels),):
            raise ValueError(f"The head has {self.weight.shape[0]} rows and {tuple(self.bias.shape)} biases for "
                             f"{len(self.labels)} labels; they must match.")

    @property
    def config(self) -> Any:
        """The transformers config of the encoder's transformer (label names added)."""
        config = self.encoder[0].auto_model.config
        config.id2label = dict(enumerate(self.labels))
        config.label2id = {label: i for i, label in enumerate(self.labels)}
        return config

    @property
    def tokenizer(self) -> Any:
        """The encoder's tokenizer."""
        return self.encoder.tokenizer

    def parameter_counts(self, trains_encoder: bool) -> dict[str, Any]:
        """``trainable``, ``total`` and ``trainable_percent``: the head alone is trained unless ``trains_encoder``."""
        head = int(self.weight.numel() + self.bias.numel())
        total = head + sum(p.numel() for p in self.encoder.parameters())
        trainable = total if trains_encoder else head
        return {"trainable": trainable, "total": total, "trainable_percent": 100.0 * trainable / max(1, total)}

    def embed(self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        """Unit-length sentence embeddings of ``texts`` (what the head reads)."""
        return encode_normalized(self.encoder, texts, batch_size=batch_size, max_length=self.max_length,
                                 show_progress=show_progress, bf16=self.bf16)

    def logits_of(self, embeddings: np.ndarray) -> np.ndarray:
        """Head logits ``(rows, labels)`` of embeddings from :meth:`embed`."""
        weight, bias = self.weight.detach().cpu().numpy(), self.bias.detach().cpu().numpy()
        return np.asarray(embeddings, dtype=np.float64) @ weight.T.astype(np.float64) + bias

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        """Softmax probabilities ``(len(texts), labels)`` in label-id order."""
        logits = self.logits_of(self.embed(texts, batch_size=batch_size, show_progress=show_progress))
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Logits of ``texts`` as a tensor (no gradients: the classifier is for inference)."""
        return torch.as_tensor(self.logits_of(self.embed(texts)))

    def save(self, folder: str | Path) -> None:
        """Write the encoder (sentence-transformers format, safetensors) and the head into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save(str(folder), safe_serialization=True, create_model_card=False)
        save_file({"weight": self.weight.detach().cpu().contiguous(), "bias": self.bias.detach().cpu().contiguous()},
                  str(folder / HEAD_WEIGHTS))
        config = {"labels": self.labels, "head": self.head, "max_length": self.max_length, "normalize": True,
                  "architecture": type(self).__name__}
        (folder / HEAD_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path, device: str | None = None) -> SentenceTransformerForSequenceClassification:
        """Load a classifier that :meth:`save` wrote (safetensors only, no remote code).

        Raises:
            FileNotFoundError: ``folder`` holds no classifier head.
        """
        folder = Path(folder)
        if not is_sentence_classifier(folder):
            raise FileNotFoundError(f"{folder} holds no sentence classifier ({HEAD_CONFIG} and {HEAD_WEIGHTS}).")
        config = json.loads((folder / HEAD_CONFIG).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / HEAD_WEIGHTS))
        encoder = SentenceTransformer(str(folder), device=device, trust_remote_code=False,
                                      model_kwargs={"use_safetensors": True})
        return cls(encoder.eval(), tensors["weight"], tensors["bias"], config["labels"],
                   head=config.get("head", "logistic"), max_length=config.get("max_length"))
