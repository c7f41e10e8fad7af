"""build_trainer, prepare_output_dir and the small output helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from datasets import Dataset, DatasetDict
from transformers import TrainingArguments

from tlnlp.methods import MethodArgs, MethodResult, apply_method
from tlnlp.runs import environment_info, format_metrics_table, reproduce_command
from tlnlp.tasks.classification.predictions import write_predictions
from tlnlp.training import OutputDirError, build_trainer, prepare_output_dir


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True, per_device_train_batch_size=4,
                eval_strategy="epoch", save_strategy="epoch", num_train_epochs=1, logging_steps=1)
    return TrainingArguments(**{**base, **kw})


def _tokenized(tokenizer):
    texts = ["good film", "bad film", "great fun", "awful bore"] * 4
    enc = tokenizer(texts)
    rows = {**enc, "labels": [0, 1, 0, 1] * 4}
    ds = Dataset.from_dict(rows)
    return DatasetDict(train=ds, validation=ds.select(range(4)))


def test_empty_or_missing_output_dir_is_fine(tmp_path):
    assert prepare_output_dir(_args(tmp_path)) is None
    (tmp_path / "out").mkdir()
    assert prepare_output_dir(_args(tmp_path)) is None


def test_non_empty_output_dir_refused_with_fix(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match="--overwrite_output_dir"):
        prepare_output_dir(_args(tmp_path))
    (tmp_path / "out" / "checkpoint-5").mkdir()
    with pytest.raises(OutputDirError, match="--resume_from_checkpoint last"):
        prepare_output_dir(_args(tmp_path))
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_resume_last_picks_newest_checkpoint(tmp_path):
    for step in (5, 10, 15):
        (tmp_path / "out" / f"checkpoint-{step}").mkdir(parents=True)
        if step != 15:  # checkpoint-15: a run killed while saving it left no trainer_state.json
            (tmp_path / "out" / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert prepare_output_dir(_args(tmp_path, resume_from_checkpoint="last")).endswith("checkpoint-10")
    with pytest.raises(OutputDirError, match="no checkpoint"):
        prepare_output_dir(_args(tmp_path / "elsewhere", resume_from_checkpoint="last"))


def test_param_groups_build_adamw_with_their_own_rates(tmp_path, tiny_classifier, tokenizer):
    model = tiny_classifier("bert")
    head = [p for n, p in model.named_parameters() if n.startswith("classifier")]
    body = [p for n, p in model.named_parameters() if not n.startswith("classifier")]
    groups = [{"params": body, "lr": 1e-5, "name": "body"}, {"params": head, "name": "head"}]
    trainer = build_trainer(MethodResult(model, groups, MethodArgs()), tokenizer, _tokenized(tokenizer),
                            _args(tmp_path))
    groups = trainer.optimizer.param_groups
    assert {g["name"] for g in groups} == {"body", "head"}
    assert all(g["lr"] == 1e-5 for g in groups if g["name"] == "body")
    assert all(g["lr"] == pytest.approx(5e-5) for g in groups if g["name"] == "head")
    assert all(g["weight_decay"] == 0.0 for g in groups if all(p.ndim < 2 for p in g["params"]))


def test_early_stopping_turns_on_best_model_tracking(tmp_path, tiny_classifier, tokenizer):
    args = _args(tmp_path, num_train_epochs=20)
    trainer = build_trainer(apply_method(tiny_classifier("bert"), MethodArgs(early_stopping_patience=1)), tokenizer,
                            _tokenized(tokenizer), args)
    assert args.load_best_model_at_end and args.metric_for_best_model == "loss"
    assert any(type(cb).__name__ == "EarlyStoppingCallback" for cb in trainer.callback_handler.callbacks)
    with pytest.raises(ValueError, match="eval_strategy"):
        build_trainer(apply_method(tiny_classifier("bert"), MethodArgs(early_stopping_patience=1)), tokenizer,
                      _tokenized(tokenizer), _args(tmp_path, eval_strategy="no"))


def test_reproduce_command_hides_tokens():
    cmd = reproduce_command(["recipes/classification.py", "--token", "hf_abc", "--hub_token=hf_def", "--seed", "3"])
    assert "hf_abc" not in cmd and "hf_def" not in cmd and "--seed 3" in cmd and cmd.startswith("accelerate launch")


def test_write_predictions_single_label(tmp_path):
    ds = Dataset.from_dict({"text": ["a", "b"], "label": [1, 0]})
    preds = write_predictions(tmp_path / "p.jsonl", ds, np.array([[0.0, 2.0], [0.0, 1.0]]), ["neg", "pos"], False)
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert preds == [1, 1] and rows[0]["prediction"] == "pos" and rows[1]["label"] == "neg"
    assert sum(rows[0]["scores"].values()) == pytest.approx(1.0, abs=1e-5)


def test_write_predictions_multi_label(tmp_path):
    ds = Dataset.from_dict({"text": ["a"], "label": [[0, 2]]})
    preds = write_predictions(tmp_path / "p.jsonl", ds, np.array([[3.0, -3.0, 0.5]]), ["x", "y", "z"], True, 0.5)
    row = json.loads((tmp_path / "p.jsonl").read_text())
    assert preds == [[0, 2]] and row["labels"] == ["x", "z"] and row["predicted_labels"] == ["x", "z"]


def test_metrics_table_and_environment():
    table = format_metrics_table({"test_accuracy": 0.5, "eval_loss": 1.25, "epoch": 1.0})
    assert "accuracy" in table and "0.5000" in table and "epoch" not in table
    env = environment_info(7, "f" * 64)
    assert env["seed"] == 7 and env["packages"]["torch"]


def test_length_grouped_global_batches_do_not_depend_on_world_size(tmp_path, tiny_classifier, tokenizer, monkeypatch):
    import torch

    texts = [" ".join(["word"] * (1 + i % 37)) for i in range(600)]
    ds = Dataset.from_dict({**tokenizer(texts), "labels": [i % 2 for i in range(600)]})
    data = DatasetDict(train=ds)

    def global_batches(world_size: int, per_device: int, strategy_owner: str) -> list[list[int]]:
        monkeypatch.setattr(TrainingArguments, "world_size", property(lambda self: world_size))
        args = _args(tmp_path, per_device_train_batch_size=per_device, train_sampling_strategy="group_by_length",
                     eval_strategy="no")
        trainer = build_trainer(apply_method(tiny_classifier("bert"), MethodArgs()), tokenizer, data, args)
        sampler = (trainer._get_train_sampler() if strategy_owner == "tlnlp"
                   else super(type(trainer), trainer)._get_train_sampler())
        torch.manual_seed(0)
        order = list(iter(sampler))
        return [sorted(order[i:i + 8]) for i in range(0, len(order), 8)]

    one = global_batches(1, 8, "tlnlp")
    assert global_batches(2, 4, "tlnlp") == one  # the same examples in every optimisation step
    assert global_batches(2, 4, "stock") != one  # the stock sampler groups by the per-process batch


def test_predictions_keep_dataset_order_with_length_grouping(tmp_path, tiny_classifier, tokenizer):
    texts = [" ".join(["word"] * (1 + (i * 7) % 23)) for i in range(40)]
    ds = Dataset.from_dict({**tokenizer(texts), "labels": [i % 2 for i in range(40)]})
    args = _args(tmp_path, train_sampling_strategy="group_by_length", per_device_eval_batch_size=4)
    trainer = build_trainer(apply_method(tiny_classifier("bert"), MethodArgs()), tokenizer, DatasetDict(train=ds), args)
    assert list(iter(trainer._get_eval_sampler(ds))) == list(range(40))
    out = trainer.predict(ds)
    assert list(out.label_ids) == [i % 2 for i in range(40)]  # row i's label comes back at position i


@pytest.mark.parametrize(("arch", "method", "side"), [("gpt2", "prompt_tuning", "left"), ("llama", "p_tuning", "left"),
                                                      ("gpt2", "prefix_tuning", "right"), ("gpt2", "lora", "right"),
                                                      ("bert", "prompt_tuning", "right")])
def test_prompt_tuned_decoder_classifiers_pad_on_the_left(arch, method, side, tmp_path, tiny_classifier, tokenizer):
    import copy

    tok = copy.deepcopy(tokenizer)
    prepared = apply_method(tiny_classifier(arch, pad_token_id=tok.pad_token_id),
                            MethodArgs(method=method, num_virtual_tokens=3, lora_r=2))
    trainer = build_trainer(prepared, tok, _tokenized(tok), _args(tmp_path))
    assert tok.padding_side == side
    batch = trainer.data_collator([{"input_ids": tok("a rather longer film review")["input_ids"]},
                                   {"input_ids": tok("short")["input_ids"]}])
    # PEFT hands prompt-tuned decoders embeddings, so they score the last position: it must be a real token
    assert bool(batch["attention_mask"][:, -1].all()) == (side == "left")
