"""finish on an evaluation-only run (zero-shot, few-shot): its outputs match a fine-tuned run's."""

import json

import datasets
import numpy as np
import pytest
import yaml

from tlnlp.config import DataArgs, EvaluationArgs, ModelArgs
from tlnlp.runs import RunContext, Scores, finish
from tlnlp.tasks import TASKS
from tlnlp.tasks.classification.data import TaskData
from tlnlp.training import OutputDirError, prepare_output_dir


def _data(multi_label=False):
    if multi_label:
        rows = {"text": ["a", "b", "c", "d"], "label": [[0], [1, 2], [], [2]]}
    else:
        rows = {"text": ["a", "b", "c", "d"], "label": [0, 1, 2, 1]}
    split = datasets.Dataset.from_dict(rows)
    return TaskData(splits=datasets.DatasetDict(test=split), labels=["x", "y", "z"], multi_label=multi_label,
                    name="bundled:toy", fingerprint="f" * 64, version="1.0.0", license="MIT")


def finish_evaluation(output_dir, data, split, scores, *, method, method_description, model_name_or_path,
                      config_objects, recipe, extra_results=None):
    return finish(RunContext(output_dir=output_dir, recipe=recipe, task=TASKS.get("classification"), data=data,
                             base_model=model_name_or_path, config_objects=tuple(config_objects),
                             scores=Scores(split, scores, method, method_description),
                             results=dict(extra_results or {})))


def _args(tmp_path, **kw):
    return [ModelArgs(model_name_or_path="bundled:minilm", token="hf_" + "s" * 30),
            DataArgs(dataset_name="bundled:toy"), EvaluationArgs(output_dir=str(tmp_path / "run"), **kw)]


def test_single_label_outputs(tmp_path):
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    configs = _args(tmp_path)
    metrics = finish_evaluation(configs[-1].output_dir, _data(), "test", probs, method="zero_shot_nli",
                                method_description="Scores from an NLI model.", model_name_or_path="bundled:minilm",
                                config_objects=configs, recipe="zero_shot", extra_results={"template_version": "1"})
    assert metrics["test_accuracy"] == pytest.approx(0.5)  # rows 0 and 1 right, 2 and 3 wrong
    assert metrics["test_samples"] == 4
    out = tmp_path / "run"
    for name in ("test_results.json", "all_results.json", "predictions.jsonl", "confusion_matrix.png",
                 "run_config.yaml", "environment.json", "README.md"):
        assert (out / name).is_file(), name
    results = json.loads((out / "all_results.json").read_text())
    assert results["template_version"] == "1" and results["test_accuracy"] == pytest.approx(0.5)
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in rows] == ["x", "y", "x", "z"]
    assert rows[0]["scores"]["x"] == pytest.approx(0.7, abs=1e-6)  # the probabilities survive unchanged
    config = yaml.safe_load((out / "run_config.yaml").read_text())
    assert config["output_dir"] == str(out) and "token" not in config
    assert "hf_sss" not in "".join(p.read_text(errors="ignore") for p in out.iterdir() if p.suffix != ".png")
    card = (out / "README.md").read_text()
    assert "zero_shot_nli" in card and "recipes/zero_shot.py" in card


def test_multi_label_thresholds_probabilities(tmp_path):
    probs = np.array([[0.9, 0.1, 0.2], [0.1, 0.7, 0.6], [0.2, 0.3, 0.1], [0.4, 0.1, 0.8]])
    configs = _args(tmp_path)
    metrics = finish_evaluation(configs[-1].output_dir, _data(True), "test", probs, method="zero_shot_nli",
                                method_description="d", model_name_or_path="bundled:minilm",
                                config_objects=configs, recipe="zero_shot")
    assert metrics["test_accuracy"] == pytest.approx(1.0)  # exact match on every row
    assert not (tmp_path / "run" / "confusion_matrix.png").exists()


@pytest.mark.parametrize("scores, message", [
    (np.ones((3, 3)) / 3, "shape"),
    (np.array([[2.0, -1, 0]] * 4), "probabilities"),
    (np.array([[0.5, 0.4, 0.4]] * 4), "sum to 1"),
])
def test_bad_scores_are_refused(tmp_path, scores, message):
    configs = _args(tmp_path)
    with pytest.raises(ValueError, match=message):
        finish_evaluation(configs[-1].output_dir, _data(), "test", scores, method="m", method_description="d",
                          model_name_or_path="bundled:minilm", config_objects=configs, recipe="zero_shot")


def test_unknown_split(tmp_path):
    configs = _args(tmp_path)
    with pytest.raises(ValueError, match="split='validation'"):
        finish_evaluation(configs[-1].output_dir, _data(), "validation", np.ones((4, 3)) / 3, method="m",
                          method_description="d", model_name_or_path="m", config_objects=configs, recipe="r")


def test_evaluation_args_and_output_dir_guard(tmp_path):
    with pytest.raises(ValueError, match="output_dir"):
        EvaluationArgs()
    with pytest.raises(ValueError, match="device='gpu'"):
        EvaluationArgs(output_dir="x", device="gpu")
    assert EvaluationArgs(output_dir="x", device="cpu").torch_device() == "cpu"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mine.txt").write_text("keep")
    with pytest.raises(OutputDirError, match="overwrite_output_dir"):
        prepare_output_dir(EvaluationArgs(output_dir=str(tmp_path / "run")))
    assert prepare_output_dir(EvaluationArgs(output_dir=str(tmp_path / "run"), overwrite_output_dir=True)) is None
