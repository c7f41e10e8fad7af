"""Fixtures for the compare tests: a tiny saved BERT and hand-built cell records."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_bert_folder(tmp_path_factory, tokenizer):
    """A 2-layer hidden-32 BERT classifier with the bundled tokenizer, saved like a Hub folder."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from tests.conftest import tiny_config

    folder = tmp_path_factory.mktemp("compare_tiny_bert")
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(tiny_config("bert")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sentiment_csv(tmp_path_factory):
    """Train and test csv files of short positive/negative sentences (a learnable toy task)."""
    import csv

    folder = tmp_path_factory.mktemp("compare_data")
    good = ["great", "wonderful", "lovely", "superb", "delightful", "excellent"]
    bad = ["awful", "terrible", "boring", "dreadful", "horrible", "dull"]
    things = ["film", "movie", "story", "plot", "cast", "ending", "script"]

    def rows(offset: int, n: int) -> list[tuple[str, str]]:
        out = []
        for i in range(offset, offset + n):
            words = good if i % 2 else bad
            out.append((f"the {things[i % len(things)]} was {words[(i // 2) % len(words)]} number {i}",
                        "positive" if i % 2 else "negative"))
        return out

    for name, (offset, n) in {"train": (0, 48), "test": (1000, 24)}.items():
        with (folder / f"{name}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(rows(offset, n))
    return folder


def record(accuracy: float, f1: float | None = None, **extra):
    """A cell record as the runner stores it, with made-up costs."""
    return {"metrics": {"accuracy": accuracy, "f1_macro": accuracy if f1 is None else f1}, "n_train": 16,
            "n_test": 100, "num_labels": 2, "train_time_s": 2.0, "inference_s_per_example": 0.001,
            "trainable_parameters": 1000, "peak_memory_mb": 500.0, "memory_kind": "rss", **extra}
