"""Question answering: tlnlp's vectorised post-processing against a plain loop, and MiniLM on bundled:qa_tlnlp.

    OMP_NUM_THREADS=2 python benchmarks/qa_postprocess.py               # both parts (about 15 minutes on 2 cores)
    OMP_NUM_THREADS=2 python benchmarks/qa_postprocess.py --skip_training  # post-processing only

Part 1 builds windows for ``--examples`` synthetic questions over random contexts with the bundled tokenizer (real
offsets, several windows for the long contexts), draws random start/end logits with a planted answer, and answers
them twice: with :func:`tlnlp.tasks.qa.postprocess_qa_predictions` and with a per-example Python loop that applies
the same rules directly (every start/end pair of every window). It checks that answers, n-best lists and null odds
agree, and reports both times and their ratio.

Part 2 trains the bundled MiniLM on ``bundled:qa_tlnlp`` with the shipped configs (full fine-tuning, and LoRA where
the method is registered) and scores the test questions, next to the same model untrained (random span head).
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ("river mountain city engine garden theory music harbour forest signal market winter planet bridge "
         "library doctor village battery island castle").split()


def synthetic(n: int, seed: int, tokenizer, max_len: int, stride: int):
    """Random contexts and questions, their windows, and logits with a planted answer (or a planted null)."""
    from tlnlp.tasks.qa import prepare_qa_features

    rng = np.random.default_rng(seed)
    examples = {"id": [], "question": [], "context": [], "answers": []}
    for i in range(n):
        words = rng.choice(WORDS, size=int(rng.integers(40, 420)))
        examples["id"].append(f"s{i}")
        examples["question"].append("what is the " + " ".join(rng.choice(WORDS, size=3)) + "?")
        examples["context"].append(" ".join(words))
        examples["answers"].append({"text": [], "answer_start": []})
    windows = prepare_qa_features(examples, tokenizer, max_len, stride, for_evaluation=True)
    count = len(windows["input_ids"])
    start = rng.normal(size=(count, max_len)).astype(np.float32)
    end = rng.normal(size=(count, max_len)).astype(np.float32)
    for w in range(count):
        inside = [i for i, o in enumerate(windows["offset_mapping"][w]) if o[0] >= 0]
        if rng.random() < 0.3:  # a confident null answer
            start[w, windows["cls_index"][w]] += 6
            end[w, windows["cls_index"][w]] += 6
        elif inside:
            s = int(rng.choice(inside[:-3] or inside))
            start[w, s] += 4
            end[w, min(s + int(rng.integers(0, 3)), inside[-1])] += 4
    return examples, windows, start, end


def loop_postprocess(examples, windows, start, end, n_best, max_len, threshold):
    """The rules of tlnlp.tasks.qa.postprocess, written as one plain loop per example (the baseline)."""
    by_example: dict[str, list[int]] = {}
    for w, qid in enumerate(windows["example_id"]):
        by_example.setdefault(qid, []).append(w)
    predictions, nbest, null_odds = {}, {}, {}
    for qid, context in zip(examples["id"], examples["context"], strict=True):
        pool, null_score = [], None
        for w in by_example[qid]:
            offsets = windows["offset_mapping"][w]
            found = []
            for a in range(len(offsets)):
                if offsets[a][0] < 0:
                    continue
                for b in range(a, min(a + max_len, len(offsets))):
                    if offsets[b][0] >= 0 and offsets[b][1] > offsets[a][0]:
                        found.append((-(float(start[w, a]) + float(end[w, b])), w, a, b))
            found.sort()
            pool.extend(found[:n_best])
            cls = windows["cls_index"][w]
            score = float(start[w, cls]) + float(end[w, cls])
            null_score = score if null_score is None or score < null_score else null_score
        pool.sort()
        seen, best = set(), []
        for neg, w, a, b in pool:
            span = (windows["offset_mapping"][w][a][0], windows["offset_mapping"][w][b][1])
            if span not in seen:
                seen.add(span)
                best.append((context[span[0]:span[1]], -neg))
            if len(best) == n_best:
                break
        nbest[qid] = best
        null_odds[qid] = null_score - best[0][1] if best else None
        predictions[qid] = "" if not best or null_odds[qid] > threshold else best[0][0]
    return predictions, nbest, null_odds


def postprocess_benchmark(n: int, seed: int) -> dict:
    from transformers import AutoTokenizer

    from tlnlp.assets import bundled_model_path
    from tlnlp.tasks.qa import postprocess_qa_predictions

    tokenizer = AutoTokenizer.from_pretrained(bundled_model_path("minilm"))
    examples, windows, start, end = synthetic(n, seed, tokenizer, 256, 64)
    settings = {"n_best_size": 20, "max_answer_length": 30}
    began = time.perf_counter()
    ours = postprocess_qa_predictions(examples, windows, start, end, version_2_with_negative=True, **settings)
    ours_s = time.perf_counter() - began
    began = time.perf_counter()
    preds, nbest, odds = loop_postprocess(examples, windows, start, end, 20, 30, 0.0)
    loop_s = time.perf_counter() - began
    same_answers = ours.predictions == preds
    same_nbest = all([(c["text"], round(c["score"], 4)) for c in ours.nbest[q] if c["answer_start"] is not None]
                     == [(t, round(s, 4)) for t, s in nbest[q]] for q in preds)
    odds_gap = max(abs(ours.null_odds[q] - odds[q]) for q in preds)
    answered = sum(1 for a in preds.values() if a)
    return {"examples": n, "windows": len(windows["input_ids"]), "answered": answered,
            "tlnlp_seconds": round(ours_s, 3), "loop_seconds": round(loop_s, 3),
            "speedup": round(loop_s / ours_s, 1), "same_predictions": same_answers, "same_nbest": same_nbest,
            "max_null_odds_gap": odds_gap}


def _qa_args(config: str, out: Path, extra: list[str]):
    from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
    from tlnlp.config.qa_args import QAArgs
    from tlnlp.methods import MethodArgs

    types = (ModelArgs, DataArgs, QAArgs, MethodArgs, TrainingArgs)
    args = ["--config", str(ROOT / "recipes/configs/question_answering" / config), "--output_dir", str(out),
            "--report_to", "none", "--overwrite_output_dir", *extra]
    return parse_args(*types, args=args, defaults={"max_seq_length": 384})


def _scores(metrics: dict, seconds: float) -> dict:
    keys = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact", "best_f1")
    row = {f"{split}_{k}": round(metrics[f"{split}_{k}"], 2) for split in ("eval", "test") for k in keys
           if f"{split}_{k}" in metrics}
    row["seconds"] = round(seconds, 1)
    if "train_trainable_parameters" in metrics:
        row["trainable_parameters"] = metrics["train_trainable_parameters"]
    return row


def untrained(work: Path) -> dict:
    """The bundled MiniLM with a fresh span head, answering validation and test without any training."""
    import datasets
    from transformers import set_seed

    from tlnlp.methods import MethodArgs, apply_method
    from tlnlp.tasks.qa import QA_EVAL_COLUMNS, tokenize_qa
    from tlnlp.tasks.qa.data import load_qa_data
    from tlnlp.tasks.qa.evaluate import evaluate_qa_split
    from tlnlp.tasks.qa.model import load_question_answerer
    from tlnlp.training import build_trainer

    began = time.perf_counter()
    model_args, data_args, qa, _, train_args = _qa_args("qa_tlnlp_minilm.yaml", work / "untrained", [])
    set_seed(train_args.seed)
    data = load_qa_data(data_args, qa)
    model, tokenizer = load_question_answerer(model_args)
    windows = tokenize_qa(data.splits, tokenizer, data_args.max_seq_length, qa.doc_stride, qa.pad_to_max_length)
    inputs = datasets.DatasetDict({s: d.remove_columns(list(QA_EVAL_COLUMNS)) if s != "train" else d
                                   for s, d in windows.items()})
    trainer = build_trainer(apply_method(model, MethodArgs(method="full")), tokenizer, inputs, train_args)
    metrics = {}
    for prefix, split in (("eval", "validation"), ("test", "test")):
        found, _ = evaluate_qa_split(trainer, data.splits[split], windows[split], qa, prefix,
                                     qa.null_score_diff_threshold, work / "untrained")
        metrics.update(found)
    return _scores(metrics, time.perf_counter() - began)


def trained(work: Path, config: str, extra: list[str]) -> dict:
    import importlib.util

    spec = importlib.util.spec_from_file_location("qa_recipe", ROOT / "recipes" / "question_answering.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    began = time.perf_counter()
    metrics = recipe.main(*_qa_args(config, work / Path(config).stem, extra))
    return _scores(metrics, time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip_training", action="store_true")
    parser.add_argument("--epochs", type=float, default=None, help="Override the configs' num_train_epochs.")
    args = parser.parse_args()
    import torch

    from tlnlp.methods import METHODS

    result = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
              "postprocess": postprocess_benchmark(args.examples, args.seed)}
    print(json.dumps(result["postprocess"]), flush=True)
    if not args.skip_training:
        extra = ["--num_train_epochs", str(args.epochs)] if args.epochs else []
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            quality = {"untrained": untrained(work), "full": trained(work, "qa_tlnlp_minilm.yaml", extra)}
            if "lora" in METHODS:
                quality["lora"] = trained(work, "qa_tlnlp_minilm_lora.yaml", extra)
        result["bundled_qa_tlnlp_minilm"] = quality
    print(json.dumps(result))


if __name__ == "__main__":
    main()
