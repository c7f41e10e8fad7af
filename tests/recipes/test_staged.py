"""The staged-transfer recipe end to end on a tiny BERT: chains, heads, forgetting, rehearsal, baseline, resume."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import TrainerCallback

import tlnlp
from tests.recipes.conftest import ROOT, load_recipe, recipe_args
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs
from tlnlp.staged import NOT_MEASURABLE, StagedArgs, StageSpecError, build_stage_specs, run_stages
from tlnlp.training import OutputDirError

TYPES = (ModelArgs, MethodArgs, StagedArgs, TrainingArgs)
CONFIGS = sorted((ROOT / "recipes" / "configs" / "staged").glob("*.yaml"))
TREC_TO_MOVIE = ["dataset=bundled:trec6,max_train_samples=64,epochs=1",
                 "dataset=bundled:movie_sentiment,train_samples_per_class=8,epochs=2"]


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_parses_and_starts_with_its_launch_line(config):
    first = config.read_text().splitlines()[0]
    assert first == ("# accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/staged.py "
                     f"--config recipes/configs/staged/{config.name}")
    model_args, method_args, staged_args, train_args = parse_args(*TYPES, args=["--config", str(config)])
    specs = build_stage_specs(staged_args.stages, method_args, staged_args.data_defaults())
    assert len(specs) >= 2 and train_args.output_dir
    assert model_args.model_name_or_path


def _args(model_dir, out, stages, *extra: str) -> list[str]:
    return ["--model_name_or_path", str(model_dir), "--output_dir", str(out), "--max_seq_length", "32",
            "--max_eval_samples", "32", "--max_predict_samples", "40", "--per_device_train_batch_size", "8",
            "--per_device_eval_batch_size", "16", "--learning_rate", "1e-3", "--logging_steps", "2",
            "--report_to", "none", "--dataloader_num_workers", "0", "--stages", *stages, *extra]


def _main(model_dir, out, stages, *extra: str) -> dict[str, float]:
    return load_recipe("staged").main(*parse_args(*TYPES, args=_args(model_dir, out, stages, *extra)))


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def label_change_chain(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("staged") / "trec_to_movie"
    return out, _main(tiny_bert_dir, out, TREC_TO_MOVIE, "--baseline", "target_only")


def test_label_change_chain_writes_every_stage_and_a_new_head(label_change_chain):
    out, metrics = label_change_chain
    stage1, stage2 = out / "stage1_trec6", out / "stage2_movie_sentiment"
    for folder in (stage1, stage2, out / "baseline_target_only"):
        for name in ("all_results.json", "eval_results.json", "test_results.json", "model.safetensors",
                     "README.md", "run_config.yaml", "environment.json", "predictions.jsonl", "stage_record.json"):
            assert (folder / name).is_file(), folder / name
    assert list(_json(stage1 / "config.json")["id2label"].values()) == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert list(_json(stage2 / "config.json")["id2label"].values()) == ["negative", "positive"]
    results = _json(out / "staged_results.json")
    assert results["final_model"] == "stage2_movie_sentiment" and results["tlnlp_version"] == tlnlp.__version__
    for record, folder in zip(results["stages"], (stage1, stage2), strict=True):
        assert record["head"] == "new" and record["method"] == "full"
        assert record["fingerprint"] == _json(folder / "environment.json")["data_fingerprint"]
        assert record["metrics"]["test_accuracy"] == _json(folder / "test_results.json")["test_accuracy"]
    assert results["stages"][0]["epochs"] == 1.0 and results["stages"][1]["epochs"] == 2.0
    assert results["stages"][1]["start_model"] == "stage1_trec6" and results["stages"][1]["train_rows"] == 16
    assert metrics["stage1_test_accuracy"] == results["stages"][0]["metrics"]["test_accuracy"]
    assert metrics["final_test_accuracy"] == _json(stage2 / "test_results.json")["test_accuracy"]
    assert results["forgetting"] == [{"stage": 1, "dataset": "bundled:trec6", "measurable": False,
                                      "reason": NOT_MEASURABLE}]
    config = yaml.safe_load((stage2 / "run_config.yaml").read_text())  # reruns the stage alone
    parse_args(ModelArgs, DataArgs, MethodArgs, TrainingArgs, args=["--config", str(stage2 / "run_config.yaml")])
    assert config["model_name_or_path"] == str(stage1) and config["train_samples_per_class"] == 8


def test_final_card_records_the_chain_and_the_baseline_flags_negative_transfer(label_change_chain):
    out, metrics = label_change_chain
    results = _json(out / "staged_results.json")
    baseline = _json(out / "baseline_target_only" / "test_results.json")["test_accuracy"]
    chained = results["stages"][1]["metrics"]["test_accuracy"]
    assert results["baseline"]["baseline_accuracy"] == baseline and metrics["baseline_accuracy"] == baseline
    assert results["baseline"]["negative_transfer"] is (chained < baseline)
    assert metrics["negative_transfer"] == float(chained < baseline)
    card = (out / "stage2_movie_sentiment" / "README.md").read_text()
    section = card[card.index("## Staged transfer"):]
    for words in ("stage 2 of a 2-stage", f"tlnlp {tlnlp.__version__}", "bundled:trec6 v1.0.0",
                  "bundled:movie_sentiment v1.0.0", results["stages"][0]["fingerprint"],
                  results["stages"][1]["fingerprint"], "| `full` | 1 | 0.001 | 64 | new |",
                  f"{results['stages'][0]['metrics']['test_accuracy']:.4f}", f"{chained:.4f}", "### Forgetting",
                  "not measurable", "### Target-only baseline", f"{baseline:.4f}",
                  "Negative transfer" if chained < baseline else "No negative transfer"):
        assert words in section, words
    assert "## Results" in card and "accelerate launch" in card  # the rest of the card is the ordinary one
    first_card = (out / "stage1_trec6" / "README.md").read_text()
    assert "stage 1 of a 2-stage" in first_card and "see Results" in first_card
    assert (out / "staged_summary.md").read_text().count(results["stages"][1]["fingerprint"]) == 1


def _classifier(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(folder / "model.safetensors")).items() if k.startswith("classifier.")}


def test_same_labels_keep_the_head_and_forgetting_is_measured(tmp_path, tiny_bert_dir):
    # stage 2 at learning rate 0: the final model is exactly stage 1's, so its head must be stage 1's head and its
    # accuracy on stage 1's test split must be unchanged
    out = tmp_path / "frozen"
    metrics = _main(tiny_bert_dir, out, ["dataset=bundled:amazon_sentiment,max_train_samples=48,epochs=1",
                                         "dataset=bundled:movie_sentiment,train_samples_per_class=8,"
                                         "max_steps=2,learning_rate=0"])
    stage1, stage2 = _classifier(out / "stage1_amazon_sentiment"), _classifier(out / "stage2_movie_sentiment")
    assert all(torch.equal(stage1[k], stage2[k]) for k in stage1)
    results = _json(out / "staged_results.json")
    assert results["stages"][1]["head"] == "kept"
    (entry,) = results["forgetting"]
    assert entry["measurable"] and entry["split"] == "test"
    assert entry["accuracy_after_stage"] == results["stages"][0]["metrics"]["test_accuracy"]
    assert entry["accuracy_after_chain"] == pytest.approx(entry["accuracy_after_stage"], abs=1e-9)
    assert metrics["stage1_forgetting"] == pytest.approx(0.0, abs=1e-9)


def test_new_head_on_request_replaces_the_head_and_keeps_the_encoder(tmp_path, tiny_bert_dir):
    # stage 1 at a high rate moves its head far from any initialisation; stage 2 at rate 0 shows what it started from
    out = tmp_path / "new_head"
    _main(tiny_bert_dir, out, ["dataset=bundled:amazon_sentiment,max_train_samples=48,epochs=1,learning_rate=0.05",
                               "dataset=bundled:movie_sentiment,train_samples_per_class=8,max_steps=1,"
                               "learning_rate=0,new_head=true"])
    assert _json(out / "staged_results.json")["stages"][1]["head"] == "new"
    before = load_file(str(out / "stage1_amazon_sentiment" / "model.safetensors"))
    after = load_file(str(out / "stage2_movie_sentiment" / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("bert."))
    # at rate 0 a kept head would be bit-identical to stage 1's: any difference is the new head
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert float(after["classifier.weight"].std()) < 0.05 and float(after["classifier.bias"].abs().max()) == 0


def test_rehearsal_mixes_rows_and_an_adapter_stage_hands_over_its_merged_model(tmp_path, tiny_bert_dir):
    out = tmp_path / "rehearsal"
    _main(tiny_bert_dir, out, ["dataset=bundled:amazon_sentiment,max_train_samples=40,method=lora,epochs=1",
                               "dataset=bundled:movie_sentiment,train_samples_per_class=8,max_steps=2"],
          "--rehearsal_samples", "10")
    stage2 = out / "stage2_movie_sentiment"
    record = _json(stage2 / "stage_record.json")
    assert record["rehearsal_rows"] == 10 and record["train_rows"] == 26
    assert _json(stage2 / "train_results.json")["train_samples"] == 26
    assert record["start_model"] == "stage1_amazon_sentiment/merged"
    assert (out / "stage1_amazon_sentiment" / "merged" / "model.safetensors").is_file()
    # the recorded fingerprint is the movie data's own; the stage's environment.json has the mixed rows'
    results = _json(out / "staged_results.json")
    assert results["stages"][1]["fingerprint"] != _json(stage2 / "environment.json")["data_fingerprint"]
    assert "+10 rehearsal" in (stage2 / "README.md").read_text()
    # forgetting: the final model's accuracy on stage 1's test split, as its own pipeline scores it
    rows = [json.loads(line) for line in
            (out / "stage1_amazon_sentiment" / "predictions.jsonl").read_text().splitlines()]
    pipe = tlnlp.load_pipeline(stage2)
    predicted = [p[0]["label"] for p in pipe([r["text"] for r in rows], top_k=1, truncation=True, max_length=32)]
    expected = sum(p == r["label"] for p, r in zip(predicted, rows, strict=True)) / len(rows)
    (entry,) = results["forgetting"]
    assert entry["measurable"] and entry["accuracy_after_chain"] == pytest.approx(expected)
    assert entry["forgetting"] == pytest.approx(results["stages"][0]["metrics"]["test_accuracy"] - expected)


def test_rehearsal_across_label_spaces_and_bad_data_are_refused_before_anything_is_written(tmp_path, tiny_bert_dir):
    out = tmp_path / "refused"
    with pytest.raises(StageSpecError) as err:
        _main(tiny_bert_dir, out, TREC_TO_MOVIE, "--rehearsal_samples", "5")
    for words in ("rehearsal_samples=5", "bundled:trec6", "bundled:movie_sentiment", "label spaces differ",
                  "drop --rehearsal_samples"):
        assert words in str(err.value)
    assert not out.exists()
    with pytest.raises(tlnlp.errors.UserError, match="movie_sentiment"):
        _main(tiny_bert_dir, out, ["dataset=bundled:trec6", "dataset=bundled:movie_sentment"])
    assert not out.exists()


class _Interrupt(TrainerCallback):
    """Stops the run like a killed process: in stage 2, after step 3 (checkpoint-2 is on disk)."""

    def on_step_end(self, args, state, control, **kwargs):
        if Path(args.output_dir).name.startswith("stage2") and state.global_step == 3:
            raise KeyboardInterrupt("simulated interruption")


def test_resume_skips_finished_stages_and_continues_the_interrupted_one(tmp_path, tiny_bert_dir, caplog):
    stages = ["dataset=bundled:amazon_sentiment,max_train_samples=32,epochs=1",
              "dataset=bundled:movie_sentiment,train_samples_per_class=8,max_steps=4,save_strategy=steps,"
              "save_steps=2,eval_strategy=no"]
    extra = ("--train_sampling_strategy", "sequential")
    full = _main(tiny_bert_dir, tmp_path / "full", stages, *extra)
    out = tmp_path / "chain"
    with pytest.raises(KeyboardInterrupt):
        run_stages(*parse_args(*TYPES, args=_args(tiny_bert_dir, out, stages, *extra)), callbacks=[_Interrupt()])
    stage1, stage2 = out / "stage1_amazon_sentiment", out / "stage2_movie_sentiment"
    assert (stage1 / "stage_record.json").is_file() and not (stage2 / "stage_record.json").exists()
    assert (stage2 / "checkpoint-2").is_dir() and not (stage2 / "checkpoint-4").exists()
    before = {name: (stage1 / name).read_bytes() for name in ("stage_record.json", "model.safetensors")}
    with pytest.raises(OutputDirError, match="--resume_from_checkpoint last"):
        _main(tiny_bert_dir, out, stages, *extra)  # a plain rerun is refused
    changed = [stages[0].replace("epochs=1", "epochs=2"), stages[1]]
    with pytest.raises(OutputDirError, match=r"stage 1 .*training.num_train_epochs"):
        _main(tiny_bert_dir, out, changed, *extra, "--resume_from_checkpoint", "last")
    with caplog.at_level(logging.INFO, logger="tlnlp.staged"):
        resumed = _main(tiny_bert_dir, out, stages, *extra, "--resume_from_checkpoint", "last")
    log = caplog.text
    assert "Stage 1/2: bundled:amazon_sentiment, full: finished before" in log
    assert "Stage 2/2: bundled:movie_sentiment, full (resuming from checkpoint-2)" in log
    assert {name: (stage1 / name).read_bytes() for name in before} == before  # stage 1 untouched
    assert _json(stage2 / "stage_record.json")["resumed_from"] == "checkpoint-2"
    assert _json(stage2 / "trainer_state.json")["global_step"] == 4
    assert resumed["final_test_accuracy"] == pytest.approx(full["final_test_accuracy"])
    eval_loss = {name: _json(tmp_path / name / stage2.name / "eval_results.json")["eval_loss"]
                 for name in ("full", "chain")}
    assert eval_loss["chain"] == pytest.approx(eval_loss["full"], rel=1e-4)  # the same model as without the stop


def test_a_classification_run_folder_starts_a_stage(tmp_path, tiny_bert_dir, caplog):
    run = tmp_path / "classification_run"
    load_recipe("classification").main(*parse_args(ModelArgs, DataArgs, MethodArgs, TrainingArgs,
                                                   args=recipe_args(tiny_bert_dir, run, "--save_strategy", "no")))
    out = tmp_path / "from_run"
    with caplog.at_level(logging.INFO, logger="tlnlp.staged"):
        _main(run, out, ["dataset=bundled:amazon_sentiment,max_train_samples=24,max_steps=1,learning_rate=0"])
    assert "Stage 1/1: bundled:amazon_sentiment, full" in caplog.text
    record = _json(out / "stage1_amazon_sentiment" / "stage_record.json")
    assert record["head"] == "kept" and record["start_model"] == "classification_run"
    trained, staged = _classifier(run), _classifier(out / "stage1_amazon_sentiment")
    assert all(torch.equal(trained[k], staged[k]) for k in trained)  # the run's head carried over


def test_push_sends_only_the_final_model_with_the_whole_chain_on_its_card(tmp_path, tiny_bert_dir, monkeypatch):
    from tests.hub_server import PLANTED_TOKEN, local_hub_fixture

    hub_fixture = local_hub_fixture(tmp_path, monkeypatch)
    local_hub = next(hub_fixture)
    try:
        out = tmp_path / "pushed"
        _main(tiny_bert_dir, out, ["dataset=bundled:amazon_sentiment,max_train_samples=24,max_steps=1",
                                   "dataset=bundled:movie_sentiment,train_samples_per_class=4,max_steps=1"],
              "--push_to_hub", "--hub_model_id", "chain-tiny", "--save_strategy", "no")
        assert list(local_hub.repos) == ["tlnlp-tester/chain-tiny"]  # no stage but the last is pushed
        files = local_hub.files("tlnlp-tester/chain-tiny")
        card = files["README.md"].decode()
        assert "model.safetensors" in files and "## Staged transfer" in card and "### Forgetting" in card
        local = (out / "stage2_movie_sentiment" / "README.md").read_text()
        assert card[card.index("## Staged transfer"):] == local[local.index("## Staged transfer"):]
        assert not [p for p in out.rglob("*") if p.is_file() and PLANTED_TOKEN.encode() in p.read_bytes()]
    finally:
        hub_fixture.close()


@pytest.mark.slow
def test_two_process_launch_runs_the_chain_with_one_writer(tmp_path, tiny_bert_dir):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "recipes" / "accelerate" / "cpu_2proc.yaml"), "--main_process_port", str(port),
           str(ROOT / "recipes" / "staged.py"),
           *_args(tiny_bert_dir, out, ["dataset=bundled:amazon_sentiment,max_train_samples=32,epochs=1",
                                       "dataset=bundled:movie_sentiment,train_samples_per_class=8,epochs=1"],
                  "--per_device_train_batch_size", "4", "--rehearsal_samples", "4", "--baseline", "target_only")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    results = _json(out / "staged_results.json")
    assert [r["head"] for r in results["stages"]] == ["new", "kept"] and results["stages"][1]["train_rows"] == 20
    assert results["forgetting"][0]["measurable"] and results["baseline"] is not None
    assert len((out / "stage2_movie_sentiment" / "predictions.jsonl").read_text().splitlines()) == 40
    assert proc.stdout.count("Staged transfer from") == 1  # only the main process prints
