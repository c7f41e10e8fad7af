"""The zero-shot prior of a head over sentence embeddings: each label's texts, as embedding zero-shot writes them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tlnlp.methods.heads import LabelPrior
from tlnlp.zeroshot.specs import load_spec_file, resolve_spec

__all__ = ["label_prior"]


def label_prior(spec: str, dataset_name: str | None, labels: Sequence[str], temperature: float = 0.05) -> LabelPrior:
    """Each label's template-filled descriptions from a zero-shot spec, for ``--head_init zero_shot``.

    Args:
        spec: A spec name of :mod:`tlnlp.zeroshot`, ``auto`` (the spec written for the dataset, else ``default``:
            the label names) or a YAML file of specs (its first spec).
        dataset_name: The dataset (for ``auto``).
        labels: Label names in id order.
        temperature: Embedding zero-shot's softmax temperature (the prior head is prototypes / temperature).

    Returns:
        The prior; its prototypes are the same label vectors embedding zero-shot compares texts with.
    """
    if spec.endswith((".yaml", ".yml")) and Path(spec).is_file():
        found = resolve_spec(next(iter(load_spec_file(spec))), dataset_name, "embedding", spec_file=spec)
    else:
        found = resolve_spec(spec, dataset_name, "embedding")
    texts = tuple(tuple(template.format(found.label_descriptions.get(label, label)) for template in found.templates)
                  for label in labels)
    return LabelPrior(texts=texts, temperature=temperature,
                      source=f"zero-shot spec {found.name} (version {found.version}), "
                             f"{len(found.templates)} template(s)")
