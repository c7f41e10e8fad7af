"""The question-answering recipe end to end on a tiny fixture: outputs, metrics from predictions.json, the
pipeline, every method family, user errors, and 2-process DDP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from tests.recipes.conftest import ROOT, launch_recipe, load_recipe
from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.config.qa_args import QAArgs
from tlnlp.methods import MethodArgs

TYPES = (ModelArgs, DataArgs, QAArgs, MethodArgs, TrainingArgs)
CONFIGS = sorted((ROOT / "recipes" / "configs" / "question_answering").glob("*.yaml"))
FIXTURES = ROOT / "tests" / "fixtures"


def qa_args(model_dir, out_dir, *extra: str) -> list[str]:
    """Flags for a few steps on the tiny SQuAD v2 fixture (the 'maps' passage spans several windows)."""
    return [
        "--model_name_or_path", str(model_dir), "--train_file", str(FIXTURES / "qa_tiny_train.json"),
        "--validation_file", str(FIXTURES / "qa_tiny_validation.json"), "--test_file",
        str(FIXTURES / "qa_tiny_train.json"), "--version_2_with_negative", "--max_seq_length", "48",
        "--doc_stride", "16", "--output_dir", str(out_dir), "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "8", "--learning_rate", "1e-3", "--num_train_epochs", "2",
        "--logging_steps", "2", "--report_to", "none", "--dataloader_num_workers", "0", *extra,
    ]


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_parses_and_starts_with_its_launch_line(config):
    recipe = load_recipe("question_answering")
    first = config.read_text().splitlines()[0]
    assert first.startswith("# accelerate launch") and "recipes/question_answering.py" in first
    assert f"--config recipes/configs/question_answering/{config.name}" in first
    extra = ["--bf16", "false"] if "bf16: true" in config.read_text() and not torch.cuda.is_available() else []
    model, data, qa, method, train = parse_args(*TYPES, args=["--config", str(config), *extra],
                                                defaults=recipe.DEFAULTS)
    assert train.output_dir and data.max_seq_length >= 192 and qa.doc_stride < data.max_seq_length


def _run(out, model_dir, *extra):
    recipe = load_recipe("question_answering")
    return recipe.main(*parse_args(*TYPES, args=qa_args(model_dir, out, *extra), defaults=recipe.DEFAULTS))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("qa") / "run"
    return out, _run(out, tiny_bert_dir, "--token", "hf_PLANTEDSECRET", "--null_threshold_from_validation")


def _references(name):
    doc = json.loads((FIXTURES / name).read_text())
    return {q["id"]: ([a["text"] for a in q["answers"]], p["context"], q["question"])
            for a in doc["data"] for p in a["paragraphs"] for q in p["qas"]}


def test_run_writes_every_output(finished_run):
    out, metrics = finished_run
    for name in ("predictions.json", "nbest_predictions.json", "null_odds.json", "test_predictions.json",
                 "test_nbest_predictions.json", "eval_results.json", "test_results.json", "train_results.json",
                 "all_results.json", "run_config.yaml", "environment.json", "README.md", "model.safetensors",
                 "tokenizer.json", "training_curves.png"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.bin"))
    results = json.loads((out / "all_results.json").read_text())
    for key in ("eval_exact", "eval_f1", "eval_HasAns_exact", "eval_HasAns_f1", "eval_NoAns_exact", "eval_NoAns_f1",
                "eval_best_exact", "eval_best_exact_thresh", "eval_best_f1", "eval_best_f1_thresh", "eval_total",
                "test_exact", "test_f1", "train_loss", "eval_loss"):
        assert key in results, key
    assert metrics["eval_total"] == 6 and metrics["test_total"] == 12
    assert metrics["train_windows"] > metrics["train_samples"]  # the long passage needs several windows
    # test answers use the null threshold that was best on validation
    assert metrics["test_null_score_diff_threshold"] == pytest.approx(metrics["eval_best_f1_thresh"])
    assert metrics["eval_null_score_diff_threshold"] == 0.0
    cfg = yaml.safe_load((out / "run_config.yaml").read_text())
    assert cfg["version_2_with_negative"] is True and cfg["doc_stride"] == 16 and cfg["max_seq_length"] == 48
    card = (out / "README.md").read_text()
    assert "pipeline_tag: question-answering" in card and "eval_f1" not in card.split("---")[1]
    for path in out.rglob("*"):
        if path.is_file():
            assert b"PLANTEDSECRET" not in path.read_bytes(), path


def test_metrics_are_those_of_predictions_json(finished_run):
    from tlnlp.tasks.qa import squad_metrics

    out, metrics = finished_run
    for prefix, fixture, name in (("eval", "qa_tiny_validation.json", "predictions.json"),
                                  ("test", "qa_tiny_train.json", "test_predictions.json")):
        refs = {k: v[0] for k, v in _references(fixture).items()}
        predictions = json.loads((out / name).read_text())
        assert set(predictions) == set(refs)
        again = squad_metrics(predictions, refs)
        for key in ("exact", "f1", "HasAns_f1", "NoAns_exact"):
            assert metrics[f"{prefix}_{key}"] == pytest.approx(again[key]), (prefix, key)
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    odds = json.loads((out / "null_odds.json").read_text())
    for qid, candidates in nbest.items():
        scores = [c["score"] for c in candidates]
        assert scores == sorted(scores, reverse=True) and any(c["text"] == "" for c in candidates)
        null = next(c["score"] for c in candidates if c["text"] == "")
        best_span = max(c["score"] for c in candidates if c["text"])
        assert odds[qid] == pytest.approx(null - best_span)


def test_pipeline_answers_as_predictions_json(finished_run):
    import tlnlp

    out, _ = finished_run
    qa = tlnlp.load_pipeline(out)
    predictions = json.loads((out / "predictions.json").read_text())
    for qid, (_, context, question) in _references("qa_tiny_validation.json").items():
        assert qa(question=question, context=context)["answer"] == predictions[qid], qid
    several = qa([{"question": "What was salt used as?", "context": "Salt was used as money."}] * 2, top_k=2)
    assert len(several) == 2 and len(several[0]) == 2


def test_frozen_backbone_trains_only_the_span_head(tmp_path, tiny_bert_dir):
    from safetensors.torch import load_file

    metrics = _run(tmp_path / "fe", tiny_bert_dir, "--method", "frozen_backbone", "--num_train_epochs", "1")
    before = load_file(str(Path(tiny_bert_dir) / "model.safetensors"))
    after = load_file(str(tmp_path / "fe" / "model.safetensors"))
    shared = [k for k in after if k in before]
    assert shared and all(before[k].equal(after[k]) for k in shared if k.startswith("bert.encoder."))
    assert metrics["train_trainable_parameters"] == 66  # qa_outputs: 32 x 2 weights + 2 biases


def test_lora_saves_adapter_and_head_and_answers_the_same_when_merged(tmp_path, tiny_bert_dir):
    import tlnlp

    out = tmp_path / "lora"
    metrics = _run(out, tiny_bert_dir, "--method", "lora", "--merge_adapter", "--num_train_epochs", "1")
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    assert metrics["merge_max_abs_logit_diff"] < 1e-4  # segment ids reach the model in training too
    card = (out / "README.md").read_text()
    assert "span-prediction head" in card  # the method's description names the task's head
    usage = card.split("## Using this adapter", 1)[1]
    assert "pipe(question=" in usage and "pipe(\"A short text" not in usage  # the QA call, not a classifier's
    predictions = json.loads((out / "predictions.json").read_text())
    adapter_qa, merged_qa = tlnlp.load_pipeline(out), tlnlp.load_pipeline(out / "merged")
    for qid, (_, context, question) in list(_references("qa_tiny_validation.json").items())[:4]:
        assert adapter_qa(question=question, context=context)["answer"] == predictions[qid]
        merged = merged_qa(question=question, context=context, top_k=3)
        assert [c["answer"] for c in merged] == [c["answer"] for c in adapter_qa(question=question, context=context,
                                                                                   top_k=3)]


def test_prompt_tuning_answers_line_up_with_the_real_tokens(tmp_path, tiny_bert_dir):
    """PEFT prepends virtual tokens to the logits; tlnlp cuts them, so positions and offsets still agree."""
    import tlnlp

    out = tmp_path / "prompt"
    _run(out, tiny_bert_dir, "--method", "prompt_tuning", "--num_train_epochs", "1")
    predictions = json.loads((out / "predictions.json").read_text())
    qa = tlnlp.load_pipeline(out)
    refs = _references("qa_tiny_validation.json")
    for qid, (_, context, question) in refs.items():
        assert qa(question=question, context=context)["answer"] == predictions[qid], qid
    for qid, candidates in json.loads((out / "nbest_predictions.json").read_text()).items():
        context = refs[qid][1]
        for c in candidates:  # each span is read back from its context through the offsets
            if c["answer_start"] is not None:
                assert context[c["answer_start"]:c["answer_start"] + len(c["text"])] == c["text"]
    windows_width = qa.model(**qa.tokenizer(["q?"], ["some context"], return_tensors="pt")).start_logits.shape[1]
    assert windows_width == len(qa.tokenizer("q?", "some context")["input_ids"])


def test_ulmfit_method_runs(tmp_path, tiny_bert_dir):
    metrics = _run(tmp_path / "ulmfit", tiny_bert_dir, "--method", "ulmfit", "--num_train_epochs", "2")
    assert "eval_f1" in metrics and (tmp_path / "ulmfit" / "predictions.json").is_file()


def test_bad_answer_start_exits_cleanly_with_the_ids(tmp_path, capsys):
    from tlnlp.errors import user_errors

    doc = json.loads((FIXTURES / "qa_tiny_validation.json").read_text())
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    out = tmp_path / "never"
    recipe = load_recipe("question_answering")
    parsed = parse_args(*TYPES, args=["--train_file", str(bad), "--version_2_with_negative", "--output_dir", str(out)],
                        defaults=recipe.DEFAULTS)
    with pytest.raises(SystemExit) as exited, user_errors():
        recipe.main(*parsed)
    assert exited.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error:") and "'salt-1'" in last and "--repair_answer_starts" in last
    assert not out.exists()


def _launch(num_processes: int, out: Path, model_dir: Path, per_device_batch: int, eval_batch: int) -> dict:
    args = qa_args(model_dir, out, "--per_device_train_batch_size", str(per_device_batch),
                   "--per_device_eval_batch_size", str(eval_batch), "--save_strategy", "no")
    launch_recipe("question_answering", num_processes, args)
    return json.loads((out / "all_results.json").read_text())


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path, tiny_bert_dir):
    one = _launch(1, tmp_path / "one", tiny_bert_dir, per_device_batch=4, eval_batch=6)
    # same global batches; 6 validation and 24 test windows split evenly (the Trainer's eval loss counts the
    # repeated rows that fill an uneven last batch); every window padded to max_seq_length (the QA loss covers
    # padding positions, so per-process padding would change it)
    two = _launch(2, tmp_path / "two", tiny_bert_dir, per_device_batch=2, eval_batch=3)
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-3)
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], rel=1e-3)
    # the main process answers every question once, from windows gathered in order
    for name in ("predictions.json", "test_predictions.json"):
        a = json.loads((tmp_path / "one" / name).read_text())
        b = json.loads((tmp_path / "two" / name).read_text())
        assert a == b, name
    assert two["eval_f1"] == pytest.approx(one["eval_f1"]) and two["test_total"] == 12
