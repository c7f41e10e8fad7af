"""Tiny NLI-shaped models (2- and 3-way heads) saved as folders, and texts of very different lengths."""

from __future__ import annotations

import pytest
import torch

#: id2label of the heads under test: MNLI order (entailment last), entailment first (as in some Hub NLI
#: models), and a 2-way head like the one tlnlp's label-entailment training saves.
HEADS = {
    "3way": {0: "contradiction", 1: "neutral", 2: "entailment"},
    "3way_entailment_first": {0: "ENTAILMENT", 1: "neutral", 2: "contradiction"},
    "2way": {0: "entailment", 1: "not_entailment"},
}

TEXTS = [
    "I loved this movie so much, the acting was wonderful and the ending made me cry.",
    "Shares fell sharply today.",
    "hi",
    "Who was the first president of the United States of America and when was he elected?",
    "The new phone has a faster chip, a brighter screen and a battery that lasts two full days.",
]
LABELS = ["positive", "negative", "business", "a question about people", "technology"]


def make_nli_model(head: str = "3way", arch: str = "bert"):
    """A 2-layer NLI-shaped classifier whose scores vary clearly between texts (large init, no dropout)."""
    from transformers import AutoModelForSequenceClassification

    from tests.conftest import tiny_config

    torch.manual_seed(0)
    id2label = HEADS[head]
    cfg = tiny_config(arch, num_labels=len(id2label), initializer_range=0.5, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)
    cfg.id2label = dict(id2label)
    cfg.label2id = {name: i for i, name in id2label.items()}
    return AutoModelForSequenceClassification.from_config(cfg).eval()


@pytest.fixture(scope="session")
def nli_dir(tmp_path_factory, tokenizer):
    """Factory: ``nli_dir(head)`` -> folder of a saved tiny NLI model with the bundled tokenizer (cached)."""
    made = {}

    def make(head: str = "3way"):
        if head not in made:
            folder = tmp_path_factory.mktemp(f"nli_{head}")
            make_nli_model(head).save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            made[head] = folder
        return made[head]

    return make
