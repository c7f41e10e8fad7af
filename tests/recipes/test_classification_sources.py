"""The classification recipe on other shapes of data and model: files, text pairs, multi-label, a decoder, MiniLM."""

from __future__ import annotations

import json
import random

import pytest
import yaml

from tests.recipes.conftest import load_recipe
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs

TYPES = (ModelArgs, DataArgs, MethodArgs, TrainingArgs)
FAST = ["--max_seq_length", "32", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16",
        "--learning_rate", "1e-3", "--num_train_epochs", "1", "--report_to", "none", "--save_strategy", "no",
        "--logging_steps", "5"]
WORDS = {"sport": ["goal", "match", "team", "score"], "music": ["song", "band", "album", "concert"],
         "food": ["pizza", "bread", "soup", "cheese"]}


def _run(*argv):
    return load_recipe("classification").main(*parse_args(*TYPES, args=list(argv)))


def _topic_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topics = sorted(rng.sample(list(WORDS), rng.choice([1, 2])))
        words = [rng.choice(WORDS[t]) for t in topics for _ in range(3)]
        rng.shuffle(words)
        rows.append({"id": i, "body": " ".join(words), "tags": topics})
    return rows


def test_multi_label_jsonl_with_mapped_columns(tmp_path, tiny_bert_dir):
    path = tmp_path / "topics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _topic_rows(120)) + "\n")
    out = tmp_path / "out"
    metrics = _run("--model_name_or_path", str(tiny_bert_dir), "--train_file", str(path), "--text_column", "body",
                   "--label_column", "tags", "--output_dir", str(out), *FAST, "--num_train_epochs", "3")
    assert {"test_f1_micro", "test_f1_macro", "test_accuracy"} <= set(metrics)
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert set(config["id2label"].values()) == {"food", "music", "sport"}
    row = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert set(row["labels"]) <= {"food", "music", "sport"} and isinstance(row["predicted_labels"], list)
    import tlnlp

    scores = tlnlp.load_pipeline(out)("goal team song", top_k=None)
    assert len(scores) == 3  # one independent sigmoid score per label


def test_text_pairs_from_csv_with_separate_files(tmp_path, tiny_bert_dir):
    rng = random.Random(1)

    def write(name: str, n: int) -> str:
        lines = ["premise,hypothesis,relation"]
        for _ in range(n):
            a, b = rng.sample(list(WORDS), 2)
            same = rng.random() < 0.5
            other = a if same else b
            lines.append(f"{rng.choice(WORDS[a])} {rng.choice(WORDS[a])},{rng.choice(WORDS[other])},"
                         f"{'same' if same else 'different'}")
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        return str(tmp_path / name)

    out = tmp_path / "out"
    metrics = _run("--model_name_or_path", str(tiny_bert_dir), "--train_file", write("train.csv", 64),
                   "--validation_file", write("dev.csv", 16), "--test_file", write("test.csv", 16),
                   "--text_column", "premise", "--text_pair_column", "hypothesis", "--label_column", "relation",
                   "--output_dir", str(out), *FAST)
    assert metrics["test_samples"] == 16
    row = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert "text_pair" in row and row["label"] in ("same", "different")


def test_decoder_backbone_classifies_with_padding(tmp_path, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    from tests.conftest import tiny_config

    folder = tmp_path / "tiny_llama"
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config("llama")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    out = tmp_path / "out"
    metrics = _run("--model_name_or_path", str(folder), "--dataset_name", "bundled:sms_spam", "--max_train_samples",
                   "64", "--max_eval_samples", "16", "--max_predict_samples", "16", "--output_dir", str(out), *FAST)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["pad_token_id"] is not None
    assert config["id2label"] == {"0": "ham", "1": "spam"}


@pytest.mark.slow
def test_bundled_minilm_learns_movie_sentiment_quickly(tmp_path):
    out = tmp_path / "out"
    metrics = _run("--model_name_or_path", "bundled:minilm", "--dataset_name", "bundled:movie_sentiment",
                   "--max_train_samples", "640", "--max_eval_samples", "200", "--max_predict_samples", "300",
                   "--max_seq_length", "64", "--per_device_train_batch_size", "32", "--learning_rate", "1e-4",
                   "--max_steps", "20", "--report_to", "none", "--save_strategy", "no", "--eval_strategy", "no",
                   "--output_dir", str(out))
    assert metrics["test_accuracy"] > 0.6  # a pretrained encoder learns sentiment from 640 rows; chance is 0.5
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["model-index"][0]["results"][0]["metrics"][0]["type"] == "accuracy"
