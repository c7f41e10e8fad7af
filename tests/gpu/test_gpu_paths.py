"""GPU paths: bf16 training, ULMFiT's frozen groups, adapter merging, zero-shot and few-shot scoring on CUDA.

Skipped without a CUDA device. Self-contained (a word-level vocabulary and csv files made here), so it runs on a
GPU machine that has no bundled assets installed: ``pytest -m gpu tests/gpu``.
"""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch

from tests.conftest import tiny_config
from tests.recipes.conftest import load_recipe
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs

#: TLNLP_GPU_TEST_DEVICE=cpu dry-runs these checks on a machine without CUDA (slowly, bf16 on the CPU).
DEVICE = os.environ.get("TLNLP_GPU_TEST_DEVICE", "cuda")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device")]
PIPE_DEVICE = 0 if DEVICE == "cuda" else -1

GOOD = "good great fine lovely superb wonderful nice happy".split()
BAD = "bad awful poor dull boring terrible sad ugly".split()
FILLER = "the a movie film plot acting was is very really quite and".split()


def _texts(words: list[str], n: int, rng: random.Random) -> list[str]:
    return [" ".join(rng.sample(FILLER, 4) + rng.sample(words, 2)) for _ in range(n)]


@pytest.fixture(scope="module")
def gpu_task(tmp_path_factory):
    """A tiny BERT with a word-level vocabulary, saved like a Hub folder, and a learnable csv task."""
    from transformers import AutoModelForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("gpu_task")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *GOOD, *BAD, *FILLER]
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)})
    model_dir = folder / "model"
    torch.manual_seed(0)
    cfg = tiny_config("bert", vocab_size=len(vocab), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    AutoModelForSequenceClassification.from_config(cfg).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    rng = random.Random(0)
    files = {}
    for split, n in (("train", 96), ("validation", 32), ("test", 32)):
        rows = [(t, "pos") for t in _texts(GOOD, n // 2, rng)] + [(t, "neg") for t in _texts(BAD, n // 2, rng)]
        path = folder / f"{split}.csv"
        path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
        files[split] = path
    return model_dir, files


def _run(gpu_task, out, *extra):
    model_dir, files = gpu_task
    args = ["--model_name_or_path", str(model_dir), "--train_file", str(files["train"]),
            "--validation_file", str(files["validation"]), "--test_file", str(files["test"]),
            "--max_seq_length", "16", "--output_dir", str(out), "--per_device_train_batch_size", "8",
            "--per_device_eval_batch_size", "16", "--learning_rate", "5e-3", "--num_train_epochs", "8",
            "--logging_steps", "2", "--report_to", "none", "--save_strategy", "no", "--bf16",
            *(["--use_cpu"] if DEVICE == "cpu" else []), *extra]
    return load_recipe("classification").main(*parse_args(ModelArgs, DataArgs, MethodArgs, TrainingArgs, args=args))


def test_bf16_full_fine_tuning_learns_and_predicts_the_same_through_the_pipeline(gpu_task, tmp_path):
    import tlnlp

    metrics = _run(gpu_task, tmp_path / "full")
    assert np.isfinite(metrics["train_loss"]) and metrics["test_accuracy"] >= 0.9
    rows = [json.loads(line) for line in (tmp_path / "full" / "predictions.jsonl").read_text().splitlines()]
    pipe = tlnlp.load_pipeline(tmp_path / "full", device=PIPE_DEVICE)
    assert pipe.device.type == DEVICE
    predicted = [out["label"] for out in pipe([r["text"] for r in rows])]
    assert predicted == [r["prediction"] for r in rows]


def test_bf16_ulmfit_keeps_frozen_groups_bit_identical_on_cuda(gpu_task, tmp_path):
    from safetensors.torch import load_file

    _run(gpu_task, tmp_path / "ulmfit", "--method", "ulmfit", "--gradual_unfreezing", "steps",
         "--unfreeze_every_steps", "100", "--max_steps", "8")
    start = load_file(str(gpu_task[0] / "model.safetensors"))
    end = load_file(str(tmp_path / "ulmfit" / "model.safetensors"))
    frozen = [k for k in start if k.startswith(("bert.embeddings.", "bert.encoder.layer.0."))]
    assert frozen and all(torch.equal(start[k], end[k]) for k in frozen)  # never thawed within 8 steps
    assert any(not torch.equal(start[k], end[k]) for k in start if k.startswith("classifier."))


def test_lora_merge_on_cuda_matches_the_adapter_model(gpu_task, tmp_path):
    metrics = _run(gpu_task, tmp_path / "lora", "--method", "lora", "--merge_adapter", "--learning_rate", "5e-3")
    merge = json.loads((tmp_path / "lora" / "merge_results.json").read_text())
    assert merge["merge_max_abs_logit_diff"] <= 1e-2  # bf16-trained adapter, merged and compared on the GPU
    assert (tmp_path / "lora" / "merged" / "model.safetensors").is_file() and np.isfinite(metrics["test_loss"])


def test_zero_shot_scores_on_cuda_equal_the_transformers_pipeline():
    from transformers import AutoModelForSequenceClassification, BertTokenizerFast, pipeline

    from tlnlp.zeroshot import ScoringOptions, score_nli

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *GOOD, *BAD, *FILLER, "this", "example", "{}", "."]
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)})
    torch.manual_seed(0)
    cfg = tiny_config("bert", vocab_size=len(vocab), num_labels=3, initializer_range=0.5)
    cfg.id2label = {0: "contradiction", 1: "neutral", 2: "entailment"}
    cfg.label2id = {v: k for k, v in cfg.id2label.items()}
    model = AutoModelForSequenceClassification.from_config(cfg).eval().to(DEVICE)
    texts = _texts(GOOD, 5, random.Random(1)) + _texts(BAD, 5, random.Random(2))
    labels = ["good", "bad", "dull"]
    for multi_label in (False, True):
        ours = score_nli(model, tokenizer, texts, labels, options=ScoringOptions(multi_label=multi_label, batch_size=4))
        pipe = pipeline("zero-shot-classification", model=model, tokenizer=tokenizer, device=PIPE_DEVICE)
        for i, text in enumerate(texts):
            out = pipe(text, candidate_labels=labels, multi_label=multi_label)
            theirs = dict(zip(out["labels"], out["scores"], strict=True))
            assert np.allclose(ours[i], [theirs[label] for label in labels], atol=1e-5), (i, multi_label)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-3), (torch.bfloat16, 0.25)])
def test_shared_prefix_scoring_on_cuda_equals_naive_scoring(dtype, tolerance):
    from transformers import AutoModelForCausalLM

    from tlnlp.fewshot import score_continuations

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("llama", vocab_size=300)).eval().to(DEVICE, dtype)
    rng = random.Random(0)
    prefix = [rng.randrange(1, 300) for _ in range(40)]
    contexts = [[rng.randrange(1, 300) for _ in range(rng.randrange(1, 12))] for _ in range(24)]
    continuations = [[7], [8, 9], [10, 11, 12]]
    shared = score_continuations(model, prefix, contexts, continuations, batch_size=8)
    naive = score_continuations(model, prefix, contexts, continuations, batch_size=8, shared_prefix=False)
    assert shared.shape == (24, 3) and np.isfinite(shared).all()
    assert np.abs(shared - naive).max() <= tolerance
