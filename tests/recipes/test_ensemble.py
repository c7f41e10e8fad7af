"""``--ensemble_seeds`` and ``--average_checkpoints`` through the classification recipe, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.recipes.conftest import load_recipe, recipe_args
from tlnlp.config import parse_args

LABELS = ["negative", "positive"]
#: Fast members: a few optimiser steps each (save_strategy epoch still writes the last step's checkpoint).
FAST = ("--max_steps", "4")


def _run(model_dir, out, *extra):
    recipe = load_recipe("classification")
    return recipe.main(*parse_args(*recipe.ARGUMENTS, args=recipe_args(model_dir, out, *extra)))


def _probabilities(pipe, texts):
    """``rows x labels`` scores of a pipeline, in label-id order."""
    answers = pipe(texts, top_k=None)
    return np.array([[next(a["score"] for a in answer if a["label"] == label) for label in LABELS]
                     for answer in answers], dtype=np.float64)


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("ensemble") / "run"
    return out, _run(tiny_bert_dir, out, "--ensemble_seeds", "2", *FAST)


def test_ensemble_writes_its_members_and_every_output(ensemble_run):
    out, metrics = ensemble_run
    for seed in (42, 43):
        member = out / "members" / f"seed-{seed}"
        assert (member / "model.safetensors").is_file() and (member / "all_results.json").is_file()
        assert yaml.safe_load((member / "run_config.yaml").read_text())["seed"] == seed
    for name in ("ensemble.json", "all_results.json", "eval_results.json", "test_results.json", "predictions.jsonl",
                 "confusion_matrix.png", "run_config.yaml", "environment.json", "README.md"):
        assert (out / name).is_file(), name
    assert not (out / "model.safetensors").exists()
    manifest = json.loads((out / "ensemble.json").read_text())
    assert manifest["members"] == ["members/seed-42", "members/seed-43"] and manifest["weights"] == [1.0, 1.0]
    assert manifest["labels"] == LABELS and manifest["combine"] == "mean_probabilities"
    results = json.loads((out / "all_results.json").read_text())
    assert results["ensemble_size"] == 2 and results["ensemble_seeds"] == [42, 43]
    for seed in (42, 43):
        member = json.loads((out / "members" / f"seed-{seed}" / "all_results.json").read_text())
        assert results[f"member_{seed}_test_accuracy"] == member["test_accuracy"]
    assert results["test_accuracy"] == metrics["test_accuracy"] and metrics["ensemble_members_trained"] == 2
    assert yaml.safe_load((out / "run_config.yaml").read_text())["ensemble_seeds"] == 2
    card = (out / "README.md").read_text()
    assert "## Ensemble" in card and "`members/seed-43`" in card and "ensemble (soft vote)" in card


def test_ensemble_equals_the_mean_of_its_members_own_pipelines(ensemble_run):
    from tlnlp import load_pipeline

    out, metrics = ensemble_run
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    texts = [row["text"] for row in rows]
    members = [_probabilities(load_pipeline(out / "members" / f"seed-{seed}"), texts) for seed in (42, 43)]
    expected = np.mean(np.stack(members), axis=0)
    assert np.abs(members[0] - members[1]).max() > 1e-4  # the seeds differ, so a mean is not a copy of one
    written = np.array([[row["scores"][label] for label in LABELS] for row in rows])
    assert np.abs(written - expected).max() < 3e-6  # predictions.jsonl keeps 6 decimals
    # load_pipeline of the ensemble's folder soft-votes: exactly the mean of the members' pipelines
    np.testing.assert_allclose(_probabilities(load_pipeline(out), texts), expected, rtol=0, atol=1e-12)
    gold = [LABELS.index(row["label"]) for row in rows]
    assert metrics["test_accuracy"] == pytest.approx(np.mean(expected.argmax(axis=1) == gold))
    assert [row["prediction"] for row in rows] == [LABELS[i] for i in expected.argmax(axis=1)]


def test_ensemble_pipeline_answers_like_a_text_classification_pipeline(ensemble_run, capsys):
    from tlnlp import load_pipeline
    from tlnlp.__main__ import main as cli

    out, _ = ensemble_run
    pipe = load_pipeline(out)
    one = pipe("a warm and funny film")
    assert isinstance(one, list) and len(one) == 1 and one[0]["label"] in LABELS
    assert [len(a) for a in pipe(["good", "bad"], top_k=None)] == [2, 2]
    ranked = pipe("good", top_k=2)
    assert ranked[0]["score"] >= ranked[1]["score"] and ranked[0]["score"] + ranked[1]["score"] == pytest.approx(1)
    assert cli(["predict", str(out), "a dull mess", "--json", "--top_k", "2"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [p["label"] for p in line["predictions"]] == [a["label"] for a in pipe("a dull mess", top_k=2)]


def test_ensemble_rerun_reuses_finished_members_and_resumes_an_interrupted_one(tmp_path, tiny_bert_dir):
    out = tmp_path / "run"
    first = _run(tiny_bert_dir, out, "--ensemble_seeds", "2", *FAST)
    assert first["ensemble_members_trained"] == 2
    kept = (out / "members" / "seed-42" / "model.safetensors").stat().st_mtime_ns
    # what a kill while member seed-43 was being written leaves: its folder and the ensemble's marked unfinished
    for folder in (out, out / "members" / "seed-43"):
        (folder / ".tlnlp-unfinished").write_text("{}")
    again = _run(tiny_bert_dir, out, "--ensemble_seeds", "3", *FAST)  # one member more
    assert again["ensemble_members_trained"] == 2  # seed-43 (resumed from its checkpoint) and the new seed-44
    assert (out / "members" / "seed-42" / "model.safetensors").stat().st_mtime_ns == kept
    assert json.loads((out / "ensemble.json").read_text())["seeds"] == [42, 43, 44]
    assert not (out / ".tlnlp-unfinished").exists()
    assert _run(tiny_bert_dir, out, "--ensemble_seeds", "3", *FAST)["ensemble_members_trained"] == 0


def test_ensemble_refuses_members_trained_with_other_settings(tmp_path, tiny_bert_dir):
    from tlnlp.training import OutputDirError

    out = tmp_path / "run"
    _run(tiny_bert_dir, out, "--ensemble_seeds", "2", *FAST)
    with pytest.raises(OutputDirError, match=r"other settings \(learning_rate\).*--overwrite_output_dir"):
        _run(tiny_bert_dir, out, "--ensemble_seeds", "2", *FAST, "--learning_rate", "5e-4")
    found = _run(tiny_bert_dir, out, "--ensemble_seeds", "2", *FAST, "--learning_rate", "5e-4",
                 "--overwrite_output_dir")
    assert found["ensemble_members_trained"] == 2


def test_ensemble_refuses_what_it_cannot_do(tmp_path, tiny_bert_dir, capsys):
    from tlnlp.config import ConfigError
    from tlnlp.ensemble import EnsembleError
    from tlnlp.training import OutputDirError

    with pytest.raises(EnsembleError, match="resumes by itself"):
        _run(tiny_bert_dir, tmp_path / "a", "--ensemble_seeds", "2", "--resume_from_checkpoint", "last")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("someone's file")
    with pytest.raises(OutputDirError, match="holds no ensemble"):
        _run(tiny_bert_dir, other, "--ensemble_seeds", "2")
    with pytest.raises(ConfigError):
        _run(tiny_bert_dir, tmp_path / "b", "--ensemble_seeds", "0")
    assert "ensemble_seeds=0 must be 1" in capsys.readouterr().err


def test_ensemble_of_an_embedding_method(tmp_path, tiny_bert_dir):
    from tlnlp import load_pipeline

    out = tmp_path / "fe"
    _run(tiny_bert_dir, out, "--ensemble_seeds", "2", "--method", "feature_extraction", "--head", "linear")
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    texts = [row["text"] for row in rows]
    members = [_probabilities(load_pipeline(out / "members" / f"seed-{seed}"), texts) for seed in (42, 43)]
    expected = np.mean(np.stack(members), axis=0)
    np.testing.assert_allclose(_probabilities(load_pipeline(out), texts), expected, rtol=0, atol=1e-12)
    written = np.array([[row["scores"][label] for label in LABELS] for row in rows])
    assert np.abs(written - expected).max() < 3e-6
    assert (out / "members" / "seed-43" / "classifier_head.safetensors").is_file()


def _float_mean(paths, name):
    states = [load_file(str(path / name)) for path in paths]
    return {key: torch.stack([s[key].float() for s in states]).mean(dim=0) for key in states[-1]}


def test_average_checkpoints_saves_the_mean_of_the_last_checkpoints(tmp_path, tiny_bert_dir):
    out = tmp_path / "avg"
    metrics = _run(tiny_bert_dir, out, "--average_checkpoints", "3", "--max_steps", "6", "--save_strategy", "steps",
                   "--save_steps", "2", "--eval_strategy", "no")
    names = ["checkpoint-2", "checkpoint-4", "checkpoint-6"]  # save_total_limit 2 (tlnlp's default) raised to 3
    assert json.loads((out / "all_results.json").read_text())["averaged_checkpoints"] == names
    expected = _float_mean([out / name for name in names], "model.safetensors")
    saved = load_file(str(out / "model.safetensors"))
    last = load_file(str(out / "checkpoint-6" / "model.safetensors"))
    assert set(saved) == set(expected)
    for key, tensor in saved.items():
        torch.testing.assert_close(tensor, expected[key], rtol=0, atol=0)
    assert any(not torch.equal(saved[key], last[key]) for key in saved)  # not simply the last checkpoint
    assert "## Checkpoint averaging" in (out / "README.md").read_text()
    assert "test_accuracy" in metrics


def test_average_checkpoints_of_a_lora_run_averages_the_adapter(tmp_path, tiny_bert_dir):
    out = tmp_path / "lora"
    _run(tiny_bert_dir, out, "--method", "lora", "--average_checkpoints", "2", "--max_steps", "4",
         "--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "no", "--target_modules", "query",
         "value")
    expected = _float_mean([out / "checkpoint-2", out / "checkpoint-4"], "adapter_model.safetensors")
    saved = load_file(str(out / "adapter_model.safetensors"))
    assert set(saved) == set(expected) and any("lora_A" in key for key in saved)
    for key, tensor in saved.items():
        torch.testing.assert_close(tensor, expected[key], rtol=0, atol=0)


def test_average_checkpoints_refusals_come_before_any_work(tmp_path, tiny_bert_dir):
    from tlnlp.ensemble import EnsembleError

    cases = [(("--method", "feature_extraction"), "fits without the Trainer"),
             (("--save_strategy", "no"), "needs checkpoints"),
             (("--save_total_limit", "2"), "save_total_limit=2 keeps fewer"),
             (("--num_train_epochs", "2"), "writes only 2 checkpoint"),
             (("--load_best_model_at_end", "true", "--eval_strategy", "epoch"), "load_best_model_at_end")]
    for index, (flags, message) in enumerate(cases):
        out = tmp_path / f"r{index}"
        with pytest.raises(EnsembleError, match=message):
            _run(tiny_bert_dir, out, "--average_checkpoints", "3", *flags)
        assert not out.exists(), flags


def test_multi_label_ensemble_averages_each_labels_sigmoid(tmp_path, tiny_bert_dir):
    import random

    from tlnlp import load_pipeline

    rng, words = random.Random(0), {"sport": "goal match team", "music": "song band album", "food": "pizza soup"}
    rows = []
    for i in range(80):
        topics = sorted(rng.sample(list(words), rng.choice([1, 2])))
        rows.append({"id": i, "body": " ".join(words[t] for t in topics), "tags": topics})
    path = tmp_path / "topics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "multi"
    recipe = load_recipe("classification")
    flags = ["--model_name_or_path", str(tiny_bert_dir), "--train_file", str(path), "--text_column", "body",
             "--label_column", "tags", "--output_dir", str(out), "--max_seq_length", "16", "--max_steps", "4",
             "--learning_rate", "1e-3", "--report_to", "none", "--save_strategy", "no", "--ensemble_seeds", "2"]
    recipe.main(*parse_args(*recipe.ARGUMENTS, args=flags))
    labels = json.loads((out / "ensemble.json").read_text())["labels"]
    assert json.loads((out / "ensemble.json").read_text())["multi_label"] is True
    written = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    texts = [row["text"] for row in written]

    def scores(pipe):
        return np.array([[next(a["score"] for a in answer if a["label"] == label) for label in labels]
                         for answer in pipe(texts, top_k=None)])

    members = [scores(load_pipeline(out / "members" / f"seed-{seed}")) for seed in (42, 43)]
    expected = np.mean(np.stack(members), axis=0)
    assert np.abs(expected.sum(axis=1) - 1).max() > 0.1  # independent sigmoids, not a softmax
    assert np.abs(np.array([[row["scores"][label] for label in labels] for row in written]) - expected).max() < 3e-6
    assert [row["predicted_labels"] for row in written] == [[labels[j] for j in np.flatnonzero(p > 0.5)]
                                                           for p in expected]
