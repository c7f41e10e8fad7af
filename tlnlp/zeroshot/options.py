"""``ScoringOptions``: how the zero-shot scorers run (batch size, truncation, multi-label, temperature, progress).

One frozen value is passed through :func:`~tlnlp.zeroshot.scoring.zero_shot_probabilities` to
:func:`~tlnlp.zeroshot.nli.score_nli` or :func:`~tlnlp.zeroshot.embeddings.score_embeddings`; each scorer reads the
fields it needs. The defaults are those of the transformers zero-shot pipeline where it has one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ScoringOptions"]


@dataclass(frozen=True)
class ScoringOptions:
    """Knobs of zero-shot scoring; the core inputs (model, tokenizer, texts, labels, spec) stay arguments.

    Attributes:
        batch_size: Rows per forward pass (NLI: (text, hypothesis) pairs; embeddings: texts).
        max_length: Truncate texts so each input fits in this many tokens (default: the tokenizer's maximum).
        multi_label: NLI: score each label on its own (entailment vs contradiction) instead of a softmax over
            labels. Embeddings: a sigmoid of the similarity above the row mean instead of a softmax.
        entailment_index: NLI: class id of entailment, for configs whose label names do not say it.
        temperature: Embeddings: probabilities are a softmax (or sigmoid) of similarity / temperature.
        show_progress: Show a progress bar.
    """

    batch_size: int = 32
    max_length: int | None = None
    multi_label: bool = False
    entailment_index: int | None = None
    temperature: float = 0.05
    show_progress: bool = False
