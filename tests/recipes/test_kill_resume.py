"""Kill and resume, every method family (issue #19).

Each test kills a recipe process with SIGKILL right after a checkpoint (or a stored piece) is complete, resumes it,
and checks it ends where the uninterrupted run with the same flags ends. On the CPU, in fp32, with fixed seeds and
no data-loader workers, the Trainer's resume restores the weights, optimizer, scheduler and RNG states and skips the
batches the epoch already trained, so the final eval loss and the predictions are compared for exact equality.

Most Trainer runs use ``--train_sampling_strategy random``; the default, ``group_by_length``, resumes exactly too
since its order is seeded by the seed and the epoch (test_default_length_grouped_order_resumes_exactly).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file
from transformers.trainer_callback import CallbackHandler

from tests.recipes.conftest import recipe_args
from tests.recipes.kill_resume import RecipeForker, results, run_in_process
from tests.recipes.test_question_answering import qa_args

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not hasattr(os, "fork"), reason="the runs to kill are forked")]

#: 48 rows, batches of 8, 2 epochs: 12 steps; checkpoints every 4 steps; the kill comes after checkpoint-8,
#: two batches into the second epoch (the resume skips them and restores that epoch's shuffled order)
EVERY_4 = ("--train_sampling_strategy", "random", "--save_strategy", "steps", "--save_steps", "4")
#: Keys of all_results.json that measure time, not the run's outcome.
TIMINGS = ("runtime", "seconds", "per_second")


@pytest.fixture(scope="module")
def forker():
    """The helper process that forks the recipe runs to kill."""
    helper = RecipeForker()
    yield helper
    helper.close()


@pytest.fixture
def steps(monkeypatch) -> list[int]:
    """Global steps the Trainer finishes in this process (after the fixture is requested)."""
    done: list[int] = []
    real = CallbackHandler.on_step_end

    def counted(self, args, state, control):
        done.append(state.global_step)
        return real(self, args, state, control)

    monkeypatch.setattr(CallbackHandler, "on_step_end", counted)
    return done


def _scores(out: Path) -> dict:
    """Every ``eval_*`` and ``test_*`` number of the run's ``all_results.json`` but the timings."""
    return {k: v for k, v in results(out).items()
            if k.startswith(("eval_", "test_")) and not any(t in k for t in TIMINGS)}


def _assert_same_end(resumed: Path, reference: Path, predictions: str = "predictions.jsonl") -> None:
    """The resumed run's final scores (eval loss included) and predictions are the uninterrupted run's, exactly."""
    assert _scores(resumed) == _scores(reference)
    assert (resumed / predictions).read_bytes() == (reference / predictions).read_bytes()


def _resumed_steps(steps: list[int], reference: Path, state: str = "trainer_state.json") -> list[int]:
    """The steps a resume trained: those after the reference run's (``steps`` holds both, reference first)."""
    return steps[json.loads((reference / state).read_text())["global_step"]:]


def _kill_resume_and_reference(forker, tmp_path: Path, recipe: str, flags, count: int = 1) -> tuple[Path, Path]:
    """Kill ``recipe`` after ``count`` checkpoints, resume it with ``last``; run the reference uninterrupted."""
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    with forker.start(recipe, flags(killed), tmp_path / "killed.log", count=count) as run:
        run_in_process(recipe, flags(reference))  # while the killed run starts
        run.kill()
    assert not (killed / "all_results.json").exists()
    run_in_process(recipe, flags(killed, "--resume_from_checkpoint", "last"))
    return killed, reference


@pytest.mark.parametrize("method", [
    ("--method", "full"),
    ("--method", "frozen_backbone"),  # feature extraction with a head trained by the Trainer
    ("--method", "lora", "--lora_r", "4", "--learning_rate", "5e-3"),
], ids=["full", "frozen_backbone", "lora"])
def test_classification_methods_resume_exactly(forker, tmp_path, tiny_bert_dir, method, steps):
    def flags(out, *extra):
        return recipe_args(tiny_bert_dir, out, "--max_train_samples", "48", *EVERY_4, *method, *extra)

    killed, reference = _kill_resume_and_reference(forker, tmp_path, "classification", flags, count=2)
    assert _resumed_steps(steps, reference) == [9, 10, 11, 12]  # the resume trained the 4 steps after checkpoint-8 only
    _assert_same_end(killed, reference)
    scores = [json.loads(line)["scores"] for line in (reference / "predictions.jsonl").read_text().splitlines()]
    assert len({tuple(s.values()) for s in scores}) > 1  # the model is not a constant: a wrong order would show


def test_default_length_grouped_order_resumes_exactly(tmp_path, tiny_bert_dir):
    """``group_by_length`` (tlnlp's default) resumed mid-epoch: the same end as the uninterrupted run."""
    every_4 = ("--max_train_samples", "48", "--save_strategy", "steps", "--save_steps", "4", "--save_total_limit", "5")
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    run_in_process("classification", recipe_args(tiny_bert_dir, reference, *every_4))
    # a fresh process resuming from checkpoint-8 is what a run killed after it does (the global RNG is fresh)
    run_in_process("classification", recipe_args(tiny_bert_dir, resumed, *every_4, "--resume_from_checkpoint",
                                                 str(reference / "checkpoint-8")))
    _assert_same_end(resumed, reference)


def test_a_half_written_checkpoint_is_passed_over(tmp_path, tiny_bert_dir):
    """What a kill during a save leaves: the newest checkpoint folder holds the weights only."""
    flags = ("--max_train_samples", "48", "--num_train_epochs", "1", *EVERY_4)
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    run_in_process("classification", recipe_args(tiny_bert_dir, reference, *flags))
    shutil.copytree(reference / "checkpoint-6", resumed / "checkpoint-6")
    (resumed / "checkpoint-9").mkdir()
    shutil.copy(reference / "checkpoint-6" / "model.safetensors", resumed / "checkpoint-9")
    run_in_process("classification", recipe_args(tiny_bert_dir, resumed, *flags, "--resume_from_checkpoint", "last"))
    _assert_same_end(resumed, reference)


def test_setfit_body_resumes_exactly(forker, tmp_path, tiny_bert_dir, steps):
    flags_ = ("--method", "setfit", "--setfit_max_steps", "4", "--setfit_save_steps", "2", "--setfit_batch_size", "4",
              "--setfit_body_learning_rate", "1e-3")

    def flags(out, *extra):
        return recipe_args(tiny_bert_dir, out, *flags_, *extra)

    killed, reference = _kill_resume_and_reference(forker, tmp_path, "classification", flags)
    assert steps[4:] == [3, 4]  # the library's body training resumed after its checkpoint-2
    assert json.loads((killed / "head_fit.json").read_text())["body"]["resumed_from"] == "checkpoint-2"
    _assert_same_end(killed, reference)


def test_feature_extraction_has_no_checkpoint_and_reruns(forker, tmp_path, tiny_bert_dir):
    """It encodes the rows once and fits the head in seconds, without checkpoints: the same command runs it again."""
    killed, reference = tmp_path / "killed", tmp_path / "reference"

    def flags(out):
        return recipe_args(tiny_bert_dir, out, "--method", "feature_extraction", "--head", "linear")

    # killed after the rows are encoded, before the head is fitted
    with forker.start("classification", flags(killed), tmp_path / "killed.log",
                      pause_at="tlnlp.methods.heads.method:encode_normalized") as run:
        run_in_process("classification", flags(reference))
        run.kill()
    assert not list(killed.glob("checkpoint-*")) and not (killed / "all_results.json").exists()
    run_in_process("classification", flags(killed))
    _assert_same_end(killed, reference)


ULMFIT = ("--max_train_samples", "48", *EVERY_4, "--lm_max_steps", "6", "--lm_learning_rate", "3e-3",
          "--perplexity_max_texts", "8", "--lm_head_warmup_steps", "2", "--gradual_unfreezing", "steps",
          "--unfreeze_every_steps", "4")


@pytest.fixture(scope="module")
def ulmfit_reference(tmp_path_factory, tiny_bert_dir):
    """The two-stage ULMFiT recipe, uninterrupted."""
    out = tmp_path_factory.mktemp("ulmfit") / "reference"
    run_in_process("ulmfit", recipe_args(tiny_bert_dir, out, *ULMFIT))
    return out


@pytest.mark.parametrize("stage,saves", [("lm", 1), ("classifier", 4)])
def test_ulmfit_resumes_either_stage_exactly(forker, tmp_path, tiny_bert_dir, ulmfit_reference, stage, saves):
    """Killed in stage 1 (LM adaptation, after its checkpoint-4) or in stage 2 (after checkpoint-8 of 12)."""
    killed = tmp_path / "killed"
    with forker.start("ulmfit", recipe_args(tiny_bert_dir, killed, *ULMFIT), tmp_path / "killed.log",
                      count=saves) as run:
        run.kill()
    assert (killed / "lm_adaptation" / "checkpoint-4").is_dir()
    assert (killed / "lm_adaptation" / "lm_results.json").is_file() == (stage == "classifier")
    assert (killed / "checkpoint-8").is_dir() == (stage == "classifier")
    run_in_process("ulmfit", recipe_args(tiny_bert_dir, killed, *ULMFIT, "--resume_from_checkpoint", "last"))
    lm = [json.loads((out / "lm_adaptation" / "lm_results.json").read_text()) for out in (killed, ulmfit_reference)]
    assert lm[0]["perplexity_after"] == lm[1]["perplexity_after"]
    _assert_same_end(killed, ulmfit_reference)


def test_lm_adaptation_resumes_exactly(forker, tmp_path, tiny_bert_dir, steps):
    """Masked-LM adaptation killed after checkpoint-8 of 10: the same adapted weights and held-out perplexity."""
    topics = ["cat", "dog", "bird", "fish"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the {topics[i % 4]} sat on the mat and looked at the {topics[(i + 1) % 4]} {i}"
                                for i in range(48)), encoding="utf-8")

    def flags(out, *extra):  # 20 blocks of 32 tokens, batches of 4: 5 steps an epoch, 10 in all
        return ["--model_name_or_path", str(tiny_bert_dir), "--train_file", str(corpus), "--output_dir", str(out),
                "--max_seq_length", "32", "--per_device_train_batch_size", "4", "--learning_rate", "3e-3",
                "--num_train_epochs", "2", "--logging_steps", "2", "--report_to", "none",
                "--perplexity_max_texts", "8", "--head_warmup_steps", "2", "--dataloader_num_workers", "0",
                *EVERY_4, *extra]

    killed, reference = tmp_path / "killed", tmp_path / "reference"
    with forker.start("lm_adaptation", flags(killed), tmp_path / "killed.log", count=2) as run:
        run_in_process("lm_adaptation", flags(reference))
        run.kill()
    run_in_process("lm_adaptation", flags(killed, "--resume_from_checkpoint", "last"))
    assert _resumed_steps(steps, reference) == [9, 10]
    lm = [json.loads((out / "lm_results.json").read_text()) for out in (killed, reference)]
    assert lm[0]["perplexity_after"] == lm[1]["perplexity_after"]
    weights = [load_file(str(out / "model.safetensors")) for out in (killed, reference)]
    assert weights[0].keys() == weights[1].keys()
    assert all(weights[0][k].equal(weights[1][k]) for k in weights[0])


def test_question_answering_resumes_exactly(forker, tmp_path, tiny_bert_dir, steps):
    def flags(out, *extra):
        return qa_args(tiny_bert_dir, out, *EVERY_4, *extra)

    killed, reference = _kill_resume_and_reference(forker, tmp_path, "question_answering", flags)
    assert _resumed_steps(steps, reference) == list(range(5, 13))  # 6 steps an epoch: killed in the first
    for name in ("predictions.json", "nbest_predictions.json", "test_predictions.json"):
        assert (killed / name).read_bytes() == (reference / name).read_bytes(), name
    _assert_same_end(killed, reference, predictions="nbest_predictions.json")


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory):
    """A tiny Llama with a byte-level BPE tokenizer, saved like a Hub folder."""
    import torch
    from transformers import AutoModelForCausalLM

    from tests.conftest import tiny_config
    from tests.unit.fewshot.conftest import bpe_tokenizer

    tokenizer = bpe_tokenizer.__wrapped__()
    folder = tmp_path_factory.mktemp("tiny_lm")
    torch.manual_seed(0)
    cfg = tiny_config("llama", vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_few_shot_rerun_reuses_the_stored_runs(forker, tmp_path, tiny_lm_dir, monkeypatch):
    """Killed after the first of 4 prompt runs is stored: the rerun scores the other 3 and ends as an uninterrupted
    run. (Evaluation runs have no checkpoints; the same command with --overwrite_output_dir resumes them.)"""
    import tlnlp.fewshot.evaluate as evaluate

    def flags(out, *extra):
        return ["--model_name_or_path", str(tiny_lm_dir), "--dataset_name", "bundled:movie_sentiment",
                "--max_predict_samples", "12", "--output_dir", str(out), "--shots", "1", "--seeds", "0", "1",
                "--orders", "2", "--batch_size", "8", *extra]

    killed, reference = tmp_path / "killed", tmp_path / "reference"
    with forker.start("few_shot", flags(killed), tmp_path / "killed.log",
                      pause_at="tlnlp.fewshot.evaluate:save_run") as run:
        run_in_process("few_shot", flags(reference))
        run.kill()
    stored = list((killed / "few_shot_runs").glob("run_*.json"))
    assert [p.name for p in stored] == ["run_seed0_order0.json"] and not (killed / "all_results.json").exists()
    before = stored[0].stat().st_mtime_ns
    scored, real = [], evaluate._one_run
    monkeypatch.setattr(evaluate, "_one_run", lambda *a, **k: scored.append(1) or real(*a, **k))
    run_in_process("few_shot", flags(killed, "--overwrite_output_dir"))
    assert len(scored) == 3 and stored[0].stat().st_mtime_ns == before  # the stored run was read, not redone
    assert _scores(killed) == _scores(reference) and _scores(killed)
    assert (killed / "predictions.jsonl").read_bytes() == (reference / "predictions.jsonl").read_bytes()


def test_zero_shot_has_nothing_to_store_and_reruns(forker, tmp_path, tiny_bert_dir):
    """One scoring pass, seconds long, writes nothing before its outputs: the same command runs it again whole."""
    def flags(out):
        return ["--model_name_or_path", str(tiny_bert_dir), "--output_dir", str(out), "--max_seq_length", "48",
                "--batch_size", "16", "--dataset_name", "bundled:movie_sentiment", "--max_predict_samples", "24",
                "--strategy", "embedding"]

    killed, reference = tmp_path / "killed", tmp_path / "reference"
    # killed once every text is scored, before the first output file
    with forker.start("zero_shot", flags(killed), tmp_path / "killed.log",
                      pause_at="tlnlp.zeroshot:zero_shot_probabilities") as run:
        run_in_process("zero_shot", flags(reference))
        run.kill()
    assert not (killed / "all_results.json").exists()
    run_in_process("zero_shot", flags(killed))
    assert _scores(killed) == _scores(reference) and _scores(killed)
    assert (killed / "predictions.jsonl").read_bytes() == (reference / "predictions.jsonl").read_bytes()


def test_ladder_rerun_computes_only_the_unfinished_cells(forker, tmp_path, tiny_bert_dir, capsys):
    rows = [(f"the film was {'great' if i % 2 else 'awful'} {i}", "pos" if i % 2 else "neg") for i in range(30)]
    for name, part in (("train", rows[:20]), ("test", rows[20:])):
        (tmp_path / f"{name}.csv").write_text("text,label\n" + "\n".join(f"{t},{lab}" for t, lab in part) + "\n")

    def flags(out):
        return ["--model_name_or_path", str(tiny_bert_dir), "--train_file", str(tmp_path / "train.csv"),
                "--test_file", str(tmp_path / "test.csv"), "--max_seq_length", "16", "--output_dir", str(out),
                "--strategies", "frozen_backbone", "from_scratch", "--budgets", "3", "--seeds", "0",
                "--min_train_steps", "2", "--max_train_epochs", "2", "--batch_size", "4", "--check_forgetting",
                "false"]

    killed, reference = tmp_path / "killed", tmp_path / "reference"
    with forker.start("compare", flags(killed), tmp_path / "killed.log",
                      pause_at="tlnlp.compare.cells:CellCache.put") as run:  # killed after its first cell
        run_in_process("compare", flags(reference))
        run.kill()
    cached = list((killed / "cells").glob("*.json"))
    assert len(cached) == 1 and not (killed / "compare_table.json").exists()
    before = cached[0].stat().st_mtime_ns
    capsys.readouterr()
    run_in_process("compare", flags(killed))
    assert "1 cells run, 1 from the cache" in capsys.readouterr().out
    assert cached[0].stat().st_mtime_ns == before and len(list((killed / "cells").glob("*.json"))) == 2

    def table(out):
        found = json.loads((out / "compare_table.json").read_text())["rows"]
        return {(r["strategy"], r["budget"]): (r["accuracy_mean"], r["f1_macro_mean"]) for r in found}

    assert table(killed) == table(reference) and len(table(reference)) == 2
