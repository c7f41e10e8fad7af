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


def ladder_args(model_dir, out, data_dir, **overrides):
    """``(ModelArgs, DataArgs, CompareArgs)`` of a fast ladder on the toy csv files (no forgetting check)."""
    from tlnlp.compare import CompareArgs
    from tlnlp.config import DataArgs, ModelArgs

    model_args = ModelArgs(model_name_or_path=str(model_dir))
    data_args = DataArgs(train_file=str(data_dir / "train.csv"), test_file=str(data_dir / "test.csv"),
                         max_seq_length=16)
    settings = {"output_dir": str(out), "strategies": ["frozen_backbone", "from_scratch"], "budgets": ["2", "4"],
                "seeds": [0], "min_train_steps": 2, "max_train_epochs": 2, "batch_size": 4, "eval_batch_size": 32,
                "check_forgetting": False, **overrides}
    return model_args, data_args, CompareArgs(**settings)


@pytest.fixture
def built_trainers(monkeypatch):
    """Every Trainer a trained cell builds, in order (``build_trainer`` as the ladder calls it, recorded)."""
    from tlnlp.compare import strategies

    real = strategies.build_trainer
    built = []

    def recording(*args, **kwargs):
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(strategies, "build_trainer", recording)
    return built
