"""HF stage flags in the question-answering recipe: evaluation-only runs of a trained folder, and training only."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.recipes.conftest import load_recipe
from tests.recipes.test_question_answering import FIXTURES, TYPES, qa_args
from tlnlp.config import parse_args

#: Keys that time the run (they differ between any two runs); every other key must be equal.
TIMING = ("_runtime", "_samples_per_second", "_steps_per_second", "_model_preparation_time")
ANSWERS = ("predictions.json", "nbest_predictions.json", "null_odds.json")


def _main(args):
    recipe = load_recipe("question_answering")
    return recipe.main(*parse_args(*TYPES, args=args, defaults=recipe.DEFAULTS))


def _results(folder, prefix):
    found = json.loads((folder / f"{prefix}_results.json").read_text())
    return {k: v for k, v in found.items() if not k.endswith(TIMING)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("qa_stages") / "trained"
    return out, _main(qa_args(tiny_bert_dir, out, "--null_threshold_from_validation", "--save_strategy", "no"))


def test_evaluation_only_scores_the_folder_as_its_training_run_did(tmp_path, trained):
    run, _ = trained
    out = tmp_path / "eval_only"
    found = _main([*qa_args(run, out, "--null_threshold_from_validation"), "--do_eval", "--do_predict"])
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "all_results.json", "environment.json", "eval_results.json", "run_config.yaml", "test_results.json",
        *ANSWERS, *(f"test_{name}" for name in ANSWERS)]), "no model, no checkpoint, no train_results.json"
    for prefix in ("eval", "test"):  # the same windows, batches, post-processing: the very same numbers
        assert _results(out, prefix) == _results(run, prefix), prefix
    assert {"eval_exact", "eval_f1", "eval_best_f1_thresh", "eval_loss", "test_f1"} <= set(found)
    for name in (*ANSWERS, *(f"test_{name}" for name in ANSWERS)):
        assert json.loads((out / name).read_text()) == json.loads((run / name).read_text()), name
    assert json.loads((out / "all_results.json").read_text()) == found
    assert yaml.safe_load((out / "run_config.yaml").read_text())["do_eval"] is True
    assert json.loads((out / "environment.json").read_text())["evaluated_model"] == str(run)


def test_predict_only_answers_with_the_runs_settings(tmp_path, trained):
    """No window flags: the run's (max_seq_length 48, doc_stride 16, SQuAD v2, validation's null threshold)."""
    run, metrics = trained
    out = tmp_path / "predict_only"
    found = _main(["--model_name_or_path", str(run), "--train_file", str(FIXTURES / "qa_tiny_train.json"),
                   "--test_file", str(FIXTURES / "qa_tiny_train.json"), "--output_dir", str(out),
                   "--per_device_eval_batch_size", "8", "--report_to", "none", "--do_predict"])
    assert not (out / "eval_results.json").exists() and not (out / "predictions.json").exists()
    assert _results(out, "test") == _results(run, "test")
    assert found["test_null_score_diff_threshold"] == metrics["eval_best_f1_thresh"]
    config = yaml.safe_load((out / "run_config.yaml").read_text())
    assert (config["max_seq_length"], config["doc_stride"], config["version_2_with_negative"]) == (48, 16, True)


def test_evaluation_only_of_an_adapter_run(tmp_path, tiny_bert_dir):
    run, out = tmp_path / "lora", tmp_path / "lora_eval"
    _main(qa_args(tiny_bert_dir, run, "--method", "lora", "--num_train_epochs", "1", "--save_strategy", "no"))
    assert (run / "adapter_model.safetensors").is_file() and not (run / "model.safetensors").exists()
    _main([*qa_args(run, out, "--method", "lora"), "--do_eval"])
    assert _results(out, "eval") == _results(run, "eval")
    assert json.loads((out / "predictions.json").read_text()) == json.loads((run / "predictions.json").read_text())
    assert not (out / "test_results.json").exists() and not list(out.glob("*.safetensors"))


def test_evaluation_only_refuses_a_folder_without_a_qa_model_or_a_missing_split(tmp_path, trained, tiny_bert_dir):
    from tlnlp.runs import SavedModelError

    with pytest.raises(SavedModelError, match="not a question-answering run"):
        _main([*qa_args(tiny_bert_dir, tmp_path / "a"), "--do_eval"])
    no_test = qa_args(trained[0], tmp_path / "b")
    del no_test[no_test.index("--test_file"):no_test.index("--test_file") + 2]
    with pytest.raises(SavedModelError, match="no test split"):
        _main([*no_test, "--do_predict"])


def test_train_only_skips_the_final_scoring(tmp_path, tiny_bert_dir):
    out = tmp_path / "train_only"
    metrics = _main([*qa_args(tiny_bert_dir, out, "--max_steps", "2", "--eval_strategy", "no",
                              "--save_strategy", "no"), "--do_train"])
    assert (out / "model.safetensors").is_file() and (out / "train_results.json").is_file()
    for name in ("eval_results.json", "test_results.json", "predictions.json", "test_predictions.json"):
        assert not (out / name).exists(), name
    assert not any(key.startswith(("eval_", "test_")) for key in metrics)
