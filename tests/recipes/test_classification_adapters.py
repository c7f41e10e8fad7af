"""The classification recipe with PEFT adapters: outputs, reload, merge, resume, ULMFiT on adapters, two tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.recipes.conftest import launch_recipe, load_recipe, recipe_args
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs

TYPES = (ModelArgs, DataArgs, MethodArgs, TrainingArgs)
ADAPTER = ("--method", "lora", "--lora_r", "4", "--learning_rate", "5e-3", "--train_sampling_strategy", "sequential")


def _run(folder: Path, model_dir: Path, *extra: str) -> dict[str, float]:
    recipe = load_recipe("classification")
    return recipe.main(*parse_args(*TYPES, args=recipe_args(model_dir, folder, *ADAPTER, *extra)))


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("adapters") / "movie_lora"
    return out, _run(out, tiny_bert_dir, "--merge_adapter")


def test_adapter_run_writes_adapter_head_labels_and_resources(lora_run, tiny_bert_dir):
    out, metrics = lora_run
    for name in ("adapter_model.safetensors", "adapter_config.json", "task_config.json", "tokenizer.json",
                 "all_results.json", "predictions.jsonl", "README.md", "merged/model.safetensors",
                 "merged/config.json", "merged/tokenizer.json"):
        assert (out / name).is_file(), name
    assert not (out / "model.safetensors").exists(), "an adapter run saves the adapter only"
    saved = load_file(str(out / "adapter_model.safetensors"))
    assert any("classifier" in k for k in saved) and any("pooler" in k for k in saved)
    assert all("lora_" in k or "classifier" in k or "pooler" in k for k in saved)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_bert_dir)
    assert config["modules_to_save"] == ["bert.pooler", "classifier"]
    assert json.loads((out / "task_config.json").read_text())["id2label"] == {"0": "negative", "1": "positive"}
    results = json.loads((out / "all_results.json").read_text())
    for key in ("train_trainable_parameters", "train_trainable_percent", "train_adapter_size_mb",
                "train_peak_rss_mb", "train_runtime", "merge_max_abs_logit_diff"):
        assert key in results, key
    assert 0 < results["train_trainable_percent"] < 2 and results["train_peak_rss_mb"] > 0
    assert results["train_adapter_size_mb"] == pytest.approx((out / "adapter_model.safetensors").stat().st_size / 2**20,
                                                             abs=1e-3)
    assert results["merge_max_abs_logit_diff"] <= 1e-4 and metrics["merge_max_abs_logit_diff"] <= 1e-4
    card = (out / "README.md").read_text()
    assert "## Resources" in card and "Peak memory" in card and "Adapter size on disk" in card
    assert "- peft" in card and "## Using this adapter" in card


def test_backbone_bit_identical_after_training(lora_run, tiny_bert_dir):
    out, _ = lora_run
    before = load_file(str(Path(tiny_bert_dir) / "model.safetensors"))
    merged = load_file(str(out / "merged" / "model.safetensors"))  # the in-memory model after training, merged
    changed = {k for k in before if k in merged and not torch.equal(before[k], merged[k])}
    assert changed, "the adapter and head must have trained"
    head = ("classifier.", "bert.pooler.")  # the head layer group: BERT's pooler feeds only the classifier
    assert all(k.startswith(head) or k.endswith(("query.weight", "value.weight")) for k in changed), changed


def test_load_pipeline_from_adapter_folder_reproduces_predictions(lora_run):
    import tlnlp

    out, _ = lora_run
    pipe = tlnlp.load_pipeline(out)
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    for row in rows[:8]:
        scores = {s["label"]: s["score"] for s in pipe(row["text"], top_k=None)}
        assert set(scores) == {"negative", "positive"}
        assert scores["positive"] == pytest.approx(row["scores"]["positive"], abs=3e-6)
    merged = tlnlp.load_pipeline(out / "merged")
    for row in rows[:4]:
        scores = {s["label"]: s["score"] for s in merged(row["text"], top_k=None)}
        assert scores["positive"] == pytest.approx(row["scores"]["positive"], abs=1e-4)


def test_lora_resume_matches_uninterrupted_run(lora_run, tiny_bert_dir, tmp_path):
    out, full = lora_run
    ckpt = out / "checkpoint-12"  # what a run killed during its second epoch leaves behind
    assert (ckpt / "adapter_model.safetensors").is_file()
    resumed = _run(tmp_path / "resumed", tiny_bert_dir, "--resume_from_checkpoint", str(ckpt))
    assert resumed["eval_loss"] == pytest.approx(full["eval_loss"], rel=1e-6)
    assert resumed["test_accuracy"] == full["test_accuracy"]
    a = load_file(str(out / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "adapter_model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_lora_with_gradual_unfreezing_keeps_unthawed_blocks(tiny_bert_dir, tmp_path):
    out = tmp_path / "ulmfit_lora"
    _run(out, tiny_bert_dir, "--gradual_unfreezing", "epoch", "--discriminative_factor", "2.0")
    saved = load_file(str(out / "adapter_model.safetensors"))
    b0 = [v for k, v in saved.items() if "layer.0." in k and "lora_B" in k]
    b1 = [v for k, v in saved.items() if "layer.1." in k and "lora_B" in k]
    # epoch 1 trains the head, epoch 2 also block_1; block_0's LoRA never steps (B starts at zero)
    assert b0 and all(torch.count_nonzero(v) == 0 for v in b0)
    assert b1 and all(torch.count_nonzero(v) > 0 for v in b1)


def test_adalora_budget_follows_the_run(tiny_bert_dir, tmp_path):
    out = tmp_path / "adalora"
    _run(out, tiny_bert_dir, "--method", "adalora", "--adalora_init_r", "4", "--adalora_target_r", "2",
         "--adalora_tinit", "2", "--adalora_tfinal", "2", "--num_train_epochs", "1", "--save_strategy", "no")
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["total_step"] == 12 and config["rank_pattern"]
    kept = [sum(mask) for mask in config["rank_pattern"].values()]
    assert sum(kept) <= 2 * len(kept)  # pruned to the target budget on average


def test_adalora_resume_matches_uninterrupted_run(tiny_bert_dir, tmp_path):
    budget = ("--method", "adalora", "--adalora_init_r", "4", "--adalora_target_r", "2", "--adalora_tinit", "2",
              "--adalora_tfinal", "4")
    full = _run(tmp_path / "full", tiny_bert_dir, *budget)
    ckpt = tmp_path / "full" / "checkpoint-12"  # killed half-way through the rank budgeting (steps 3 to 20 of 24)
    resumed = _run(tmp_path / "resumed", tiny_bert_dir, *budget, "--resume_from_checkpoint", str(ckpt))
    configs = [json.loads((tmp_path / name / "adapter_config.json").read_text()) for name in ("full", "resumed")]
    assert configs[0]["rank_pattern"] == configs[1]["rank_pattern"]  # the same ranks pruned
    a = load_file(str(tmp_path / "full" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "adapter_model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert resumed["eval_loss"] == pytest.approx(full["eval_loss"], rel=1e-6)


def test_adalora_best_model_at_end_keeps_its_own_ranks(tiny_bert_dir, tmp_path):
    from safetensors import safe_open

    out = tmp_path / "best"
    # the highest eval loss is "best": an early checkpoint, taken while the ranks were still being pruned
    metrics = _run(out, tiny_bert_dir, "--method", "adalora", "--adalora_init_r", "4", "--adalora_target_r", "2",
                   "--adalora_tinit", "2", "--adalora_tfinal", "4", "--eval_strategy", "epoch",
                   "--load_best_model_at_end", "true", "--metric_for_best_model", "loss",
                   "--greater_is_better", "true")
    best = out / "checkpoint-12"
    assert json.loads((out / "checkpoint-24" / "trainer_state.json").read_text())["best_model_checkpoint"] == str(best)
    with safe_open(str(best / "adalora_state.safetensors"), framework="pt") as handle:
        best_pattern = {name.removesuffix(".default"): mask  # in memory, names carry the adapter's name
                        for name, mask in json.loads(handle.metadata()["rank_pattern"]).items()}
    final_config = json.loads((out / "adapter_config.json").read_text())
    assert final_config["rank_pattern"] == best_pattern  # the best model's ranks, not the last step's
    full_rank = load_file(str(best / "adapter_model.safetensors"))
    saved = load_file(str(out / "adapter_model.safetensors"))
    for key, value in saved.items():  # the best checkpoint's weights, cut to its kept ranks
        if "lora_E" in key:
            kept = torch.tensor(best_pattern[key.removeprefix("base_model.model.").removesuffix(".weight")])
            torch.testing.assert_close(value, full_rank[key][kept])
    assert metrics["eval_loss"] > 0


def test_two_adapters_on_two_tasks_switch_in_one_model(lora_run, tiny_bert_dir, tmp_path):
    from tlnlp.models import AdapterSet

    movie, _ = lora_run
    trec = tmp_path / "trec_lora"
    _run(trec, tiny_bert_dir, "--dataset_name", "bundled:trec6", "--num_train_epochs", "1", "--save_strategy", "no")
    adapters = AdapterSet.load({"sentiment": movie, "questions": trec})
    assert len(adapters.labels("questions")) == 6 and adapters.labels("sentiment") == ["negative", "positive"]
    for name, folder in (("questions", trec), ("sentiment", movie), ("questions", trec)):
        rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()][:10]
        got = adapters.use(name).predict([row["text"] for row in rows], max_length=32)
        for row, pred in zip(rows, got, strict=True):
            assert pred["label"] == row["prediction"]
            for label, score in row["scores"].items():
                assert pred["scores"][label] == pytest.approx(score, abs=3e-6)


def _launch(out: Path, model_dir: Path, *extra: str) -> dict:
    launch_recipe("classification", 2, recipe_args(model_dir, out, *ADAPTER, "--per_device_train_batch_size", "4",
                                                   *extra))
    return json.loads((out / "all_results.json").read_text())


@pytest.mark.slow
def test_two_process_lora_resume_matches_uninterrupted(tiny_bert_dir, tmp_path):
    full = _launch(tmp_path / "full", tiny_bert_dir)
    ckpt = tmp_path / "full" / "checkpoint-12"
    assert (ckpt / "adapter_model.safetensors").is_file()
    resumed = _launch(tmp_path / "resumed", tiny_bert_dir, "--resume_from_checkpoint", str(ckpt))
    assert resumed["eval_loss"] == pytest.approx(full["eval_loss"], rel=1e-5)
    assert resumed["test_accuracy"] == full["test_accuracy"]
    assert json.loads((tmp_path / "resumed" / "trainer_state.json").read_text())["global_step"] == 24
