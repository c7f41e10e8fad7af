"""The few-label regime: SetFit, feature extraction, zero-shot-anchored heads and the Trainer methods, side by side.

Bundled MiniLM on bundled movie sentiment (500 test sentences, the ladder's split) and TREC-6 (its whole test
split, 500 questions), 8 / 32 / 128 labels per class, seeds 0-2, every strategy on the same k-shot rows:

- ``zero_shot_embeddings``: no labels (the line every trained strategy should clear);
- ``feature_extraction`` and ``feature_extraction_zero_shot_head``: frozen encoder, logistic-regression head,
  the second started at the zero-shot prototypes with its pull chosen by cross-validation on the k-shot rows;
- ``setfit`` and ``setfit_zero_shot_head``: tlnlp's ``--method setfit`` (the library's body training), with
  either head (the two share the body trained for a budget and seed);
- ``setfit_library``: the ``setfit`` library called directly with its own defaults on the same rows
  (``SetFitModel.from_pretrained`` + ``Trainer.train``): tlnlp must not be worse than the library it wraps;
- ``setfit_label_texts_zero_shot_head``: the anchored SetFit whose body also trains on the zero-shot spec's label
  texts (``--setfit_label_texts``: one labelled row per filled template);
- ``sentence_fine_tuning`` and ``sentence_fine_tuning_zero_shot_head``: the encoder and a linear head on its
  sentence embeddings trained together (Trainer, the ladder's settings), the second anchored at the prototypes;
- ``*_self_training``: the same heads, then one round of self-training on up to 3,000 of the training split's
  other texts (labels unread), as many pseudo-labelled texts per class as cross-validation on the k-shot rows
  chooses;
- ``full``, ``ulmfit``, ``lora``: the Trainer methods at the ladder's settings.

``--datasets amazon bbc`` runs the same ladder on two corpora no design choice of these strategies was ever
scored on (bundled Amazon reviews, 298 test reviews; BBC News, 5 topics, 212 test articles; both whole test
splits): a check that the few-label results and the recommendation's regret hold on fresh data.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/few_label.py [--datasets movie trec6] [--budgets 8 32 128]
        [--seeds 0 1 2] [--strategies ...] [--setfit_max_steps N] [--selection none|heads|cv]
        [--selection_folds K] [--output_dir runs/few_label]

``--selection cv`` makes every strategy's choices (learning rate and epochs; the head's C or prior strength; SetFit's
body epochs, 1, 2 or 4, on bodies trained per fold) by k-fold cross-validation on each cell's own k-shot rows, and the
ladder recommends a strategy per budget from those scores alone, with its regret against the test-best
(:mod:`tlnlp.compare.selection`); ``heads`` (the ladder's default) does so only where no encoder trains.

SetFit's pairs grow with the square of the rows (TREC-6 at 32/class: about 30,000 pairs, 1,900 steps);
``--setfit_max_steps`` caps the body training of tlnlp's SetFit and of the library baseline alike (the library's
``max_steps``, which also caps the pairs drawn); budgets whose pairs fit under the cap run at the library's
defaults. ``--speed_rows`` first times feature extraction (encode + head) on 8,000 movie sentences beside one
epoch of full fine-tuning on them. Every finished cell is cached under the output folder: a killed run resumes.
The last line printed is one JSON object: the rows (mean and std over seeds, train seconds) per dataset, the
settings, the speed check and the run time.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

#: name -> (dataset, test rows: None for the whole test split). The first two are the ladder's design corpora; amazon
#: and bbc were never scored while any strategy was designed (a fresh check); default: the first two.
DATASETS = {"movie": ("bundled:movie_sentiment", 500), "trec6": ("bundled:trec6", None),
            "amazon": ("bundled:amazon_sentiment", None), "bbc": ("bundled:bbc_news", None)}
STRATEGIES = ["zero_shot_embeddings", "feature_extraction", "feature_extraction_zero_shot_head",
              "feature_extraction_self_training", "feature_extraction_zero_shot_head_self_training", "setfit",
              "setfit_zero_shot_head", "setfit_self_training", "setfit_zero_shot_head_self_training",
              "setfit_label_texts_zero_shot_head", "setfit_library",
              "sentence_fine_tuning", "sentence_fine_tuning_zero_shot_head", "full", "ulmfit", "lora"]


def _register_library_baseline(max_steps: int) -> None:
    """``setfit_library``: the setfit library on a cell's rows, called as its README shows."""
    import numpy as np

    from tlnlp.compare import STRATEGIES as REGISTRY
    from tlnlp.compare import Strategy
    from tlnlp.compare.strategies import test_metrics
    from tlnlp.methods import MethodArgs
    from tlnlp.methods.setfit.method import capped_steps
    from tlnlp.models import resolve_model_path

    def run(ctx: Any, cell: Any) -> dict[str, Any]:
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments

        train = ctx.data.splits["train"].select(ctx.budget_rows(cell.budget, cell.seed))
        path = resolve_model_path(ctx.model_args.model_name_or_path)
        model = SetFitModel.from_pretrained(path, labels=list(ctx.data.labels))
        capped = capped_steps(train["label"], MethodArgs(method="setfit", setfit_max_steps=max_steps))
        args = TrainingArguments(output_dir=str(Path(ctx.args.output_dir) / "library_tmp"), seed=cell.seed,
                                 max_steps=capped, show_progress_bar=False, report_to="none", save_strategy="no")
        trainer = Trainer(model=model, args=args,
                          train_dataset=Dataset.from_dict({"text": train["text"], "label": train["label"]}))
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        probs = np.asarray(model.predict_proba(list(ctx.test["text"]), as_numpy=True))
        infer = (time.perf_counter() - start) / max(1, len(ctx.test))
        return {"metrics": test_metrics(ctx.test["label"], np.log(np.clip(probs, 1e-12, None)), ctx.data.num_labels),
                "n_train": len(train), "n_test": len(ctx.test), "train_time_s": seconds,
                "inference_s_per_example": infer,
                "body_steps": int(trainer.st_trainer.state.global_step)}

    def settings(ctx: Any, budget: Any) -> dict[str, Any]:
        return {"library": "setfit", "max_steps": max_steps, "version": 2}

    if "setfit_library" not in REGISTRY:
        REGISTRY.register("setfit_library", Strategy(
            name="setfit_library", kind="fitted", description="the setfit library called directly, its defaults",
            run=run, settings=settings))


def _ladder(name: str, opts: argparse.Namespace, out: Path) -> dict[str, Any]:
    from tlnlp.compare import CompareArgs, run_compare
    from tlnlp.compare.summary import format_recommendation
    from tlnlp.config import DataArgs, ModelArgs

    dataset, test_rows = DATASETS[name]
    data_args = DataArgs(dataset_name=dataset, max_seq_length=64, max_predict_samples=test_rows)
    args = CompareArgs(output_dir=str(out / name), strategies=opts.strategies, budgets=opts.budgets, seeds=opts.seeds,
                       num_train_epochs=3, min_train_steps=60, batch_size=16, check_forgetting=False,
                       setfit_max_steps=opts.setfit_max_steps, selection=opts.selection,
                       selection_folds=opts.selection_folds)
    result = run_compare(ModelArgs(model_name_or_path="bundled:minilm"), data_args, args)
    print(f"\n## {dataset}\n\n{result.markdown}\n\n{format_recommendation(result.recommendation)}")
    keep = ("strategy", "budget", "seeds", "n_train", "n_test", "accuracy_mean", "accuracy_std", "f1_macro_mean",
            "f1_macro_std", "cv_score_mean", "cv_score_std", "chosen", "train_time_s", "selection_time_s", "flags")
    return {"dataset": dataset, "rows": [{k: row[k] for k in keep if k in row} for row in result.rows],
            "recommendation": result.recommendation}


def _speed(rows: int, full_steps: int) -> dict[str, Any]:
    """Feature extraction (encode + head) on ``rows`` movie sentences beside one epoch of full fine-tuning on them.

    The epoch's time is measured over ``full_steps`` optimisation steps (batch 16, after 5 warm-up steps; 0: the
    whole epoch, since length-grouped batches make a short window unrepresentative) and scaled to ``rows / 16``
    steps. Both run at the precision ``--bf16 auto`` picks for this machine (feature extraction
    encodes under bf16 autocast where the Trainer trains under it); feature extraction is also timed in fp32.
    """
    import numpy as np
    import torch

    from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
    from tlnlp.methods import MethodArgs, apply_method
    from tlnlp.methods.feature_extraction import FeatureExtraction
    from tlnlp.methods.heads import FitInputs
    from tlnlp.models import load_classifier
    from tlnlp.models.sentence import load_sentence_encoder
    from tlnlp.models.sentence_classifier import encode_normalized
    from tlnlp.tasks import TASKS
    from tlnlp.tasks.classification.tokenize import tokenize_classification
    from tlnlp.training import build_trainer

    task = TASKS.get("classification")
    data = task.load_data(DataArgs(dataset_name="bundled:movie_sentiment", max_train_samples=rows, max_seq_length=64))
    train = data.splits["train"]
    model_args = ModelArgs(model_name_or_path="bundled:minilm")
    (args,) = parse_args(TrainingArgs, args=[], defaults={
        "output_dir": "runs/few_label/speed_tmp", "overwrite_output_dir": True,
        "max_steps": (full_steps or -(-rows // 16)) + 5,
        "per_device_train_batch_size": 16, "save_strategy": "no", "logging_strategy": "no", "report_to": "none",
        "eval_strategy": "no", "disable_tqdm": True, "use_cpu": True})
    encoder = load_sentence_encoder(model_args, device="cpu").encoder
    fe_seconds: dict[str, float] = {}
    for bf16 in (False, True):  # warm-up: the first batches of each precision pay one-off costs
        encode_normalized(encoder, list(train["text"])[:256], max_length=64, bf16=bf16)
    for bf16 in sorted({False, bool(args.bf16)}):  # fp32 (the baseline), then the Trainer's precision
        start = time.perf_counter()
        FeatureExtraction().fit(encoder, FitInputs(texts=list(train["text"]), labels=np.asarray(train["label"]),
                                                   label_names=data.labels, max_length=64, show_progress=False,
                                                   bf16=bf16), MethodArgs(method="feature_extraction"))
        fe_seconds["bf16" if bf16 else "fp32"] = round(time.perf_counter() - start, 1)
    model, tokenizer = load_classifier(model_args, labels=data.labels)
    tokenized = tokenize_classification(data, tokenizer, 64)
    trainer = build_trainer(apply_method(model, MethodArgs(method="full")), tokenizer, tokenized, args)
    times: list[float] = []

    class Clock(__import__("transformers").TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            times.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.train()
    per_step = (times[-1] - times[4]) / (len(times) - 5)
    epoch_seconds = per_step * (len(train) / 16)
    precision = "bf16" if args.bf16 else "fp32"
    return {"rows": len(train), "precision": precision, "feature_extraction_s": fe_seconds[precision],
            "feature_extraction_fp32_s": fe_seconds["fp32"], "full_epoch_s": round(epoch_seconds, 1),
            "full_s_per_step": round(per_step, 3), "ratio": round(fe_seconds[precision] / epoch_seconds, 3),
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--output_dir", default="runs/few_label")
    parser.add_argument("--datasets", nargs="+", default=["movie", "trec6"], choices=list(DATASETS))
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument("--budgets", nargs="+", default=["8", "32", "128"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--setfit_max_steps", type=int, default=-1)
    parser.add_argument("--selection", default="heads", choices=["none", "heads", "cv"],
                        help="In-budget selection (cv: every strategy's choices by CV on its k-shot rows).")
    parser.add_argument("--selection_folds", type=int, default=5)
    parser.add_argument("--speed_rows", type=int, default=8000,
                        help="Rows of the feature-extraction speed check (0: skip it).")
    parser.add_argument("--speed_full_steps", type=int, default=0,
                        help="Steps of full fine-tuning timed for the speed check (0: a whole epoch).")
    opts = parser.parse_args()

    import datasets

    from tlnlp.training import setup_logging

    setup_logging()
    for name in ("transformers", "sentence_transformers", "setfit"):
        logging.getLogger(name).setLevel(logging.ERROR)
    datasets.disable_progress_bars()
    _register_library_baseline(opts.setfit_max_steps)
    start = time.perf_counter()
    out = Path(opts.output_dir)
    speed = _speed(opts.speed_rows, opts.speed_full_steps) if opts.speed_rows else None
    if speed:
        print(f"\nFeature extraction on {speed['rows']} sentences ({speed['precision']}): "
              f"{speed['feature_extraction_s']} s (fp32: {speed['feature_extraction_fp32_s']} s); one epoch of "
              f"full fine-tuning ({speed['precision']}): {speed['full_epoch_s']} s ({speed['full_s_per_step']} "
              f"s/step); ratio {speed['ratio']}")
    results = [_ladder(name, opts, out) for name in opts.datasets]
    import torch

    print(json.dumps({"benchmark": "few_label", "model": "bundled:minilm", "budgets": opts.budgets,
                      "seeds": opts.seeds, "setfit_max_steps": opts.setfit_max_steps, "selection": opts.selection,
                      "selection_folds": opts.selection_folds, "results": results,
                      "speed": speed,
                      "machine": {"cpu": platform.processor() or platform.machine(),
                                  "threads": torch.get_num_threads()},
                      "wall_s": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
