"""Ensemble members (seeds, folders, training arguments, reuse) and checkpoint averaging, without training."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from tlnlp.config import TrainingArgs, parse_args, write_run_config
from tlnlp.ensemble import (
    EnsembleArgs,
    EnsembleError,
    average_last_checkpoints,
    average_tensors,
    changed_settings,
    check_checkpoint_averaging,
    checkpoint_folders,
    is_finished,
    member_training_args,
    plan_members,
)
from tlnlp.methods import MethodArgs


def _train_args(tmp_path, *flags):
    (args,) = parse_args(TrainingArgs, args=["--output_dir", str(tmp_path / "out"), *flags])
    return args


def test_ensemble_args_are_checked():
    assert not EnsembleArgs().is_ensemble and EnsembleArgs(ensemble_seeds=3).is_ensemble
    assert EnsembleArgs(ensemble_seeds=3, average_checkpoints=2).for_member() == EnsembleArgs(1, 2)
    for bad, message in (({"ensemble_seeds": 0}, "ensemble_seeds=0"), ({"average_checkpoints": -1}, "-1"),
                         ({"average_checkpoints": 1}, "single checkpoint")):
        with pytest.raises(ValueError, match=message):
            EnsembleArgs(**bad)


def test_members_train_with_their_seed_in_their_folder(tmp_path):
    train_args = _train_args(tmp_path, "--seed", "7", "--do_train", "--do_predict")
    members = plan_members(tmp_path / "out", 7, 3)
    assert [m.seed for m in members] == [7, 8, 9] and members[1].name == "members/seed-8"
    args = member_training_args(train_args, members[1])
    assert args.seed == 8 and args.output_dir == str(tmp_path / "out" / "members" / "seed-8")
    assert not args.push_to_hub and args.resume_from_checkpoint is None and not args.overwrite_output_dir
    assert args._tlnlp_stages == {"do_train": True, "do_predict": True}  # the stage flags given go along
    assert train_args.seed == 7 and train_args.output_dir == str(tmp_path / "out")  # the ensemble's own unchanged


def test_an_interrupted_member_resumes_from_its_newest_checkpoint(tmp_path):
    train_args = _train_args(tmp_path)
    member = plan_members(tmp_path / "out", 42, 1)[0]
    for step in (2, 10, 4):
        (member.folder / f"checkpoint-{step}").mkdir(parents=True)
    (member.folder / ".tlnlp-unfinished").write_text("{}")
    assert [p.name for p in checkpoint_folders(member.folder)] == ["checkpoint-2", "checkpoint-4", "checkpoint-10"]
    assert member_training_args(train_args, member).resume_from_checkpoint == str(member.folder / "checkpoint-10")
    over = member_training_args(train_args, member, write_over=True)
    assert over.resume_from_checkpoint is None and over.overwrite_output_dir
    for path in checkpoint_folders(member.folder):
        path.rmdir()
    assert not member_training_args(train_args, member).overwrite_output_dir  # only the marker: nothing to write over
    (member.folder / "runs").mkdir()
    assert member_training_args(train_args, member).overwrite_output_dir  # nothing to resume: start again
    assert not is_finished(member.folder)


def test_a_finished_member_is_reused_only_with_the_same_settings(tmp_path):
    train_args = _train_args(tmp_path, "--learning_rate", "1e-3")
    member = plan_members(tmp_path / "out", 42, 1)[0]
    args = member_training_args(train_args, member)
    objects = (MethodArgs(), args, EnsembleArgs())
    write_run_config(member.folder, *objects)
    (member.folder / "all_results.json").write_text(json.dumps({"test_accuracy": 0.5}))
    assert is_finished(member.folder) and changed_settings(member.folder, objects) == []
    write_run_config(member.folder, MethodArgs(), args)  # a run fitted without the Trainer records no EnsembleArgs
    assert changed_settings(member.folder, objects) == []
    assert changed_settings(member.folder, (MethodArgs(), args, EnsembleArgs(1, 3))) == ["average_checkpoints"]
    other = dataclasses.replace(MethodArgs(), method="lora")
    assert changed_settings(member.folder, (other, args, EnsembleArgs())) == ["method"]


def test_checkpoint_averaging_is_checked_before_training(tmp_path):
    fine = _train_args(tmp_path, "--save_strategy", "steps", "--save_steps", "2", "--max_steps", "10")
    check_checkpoint_averaging(3, fine, MethodArgs())
    assert fine.save_total_limit == 3  # tlnlp's default of 2 raised, as it was not given
    check_checkpoint_averaging(0, _train_args(tmp_path, "--save_strategy", "no"), MethodArgs())  # off: no check
    cases = [((), MethodArgs(method="setfit"), "fits without the Trainer"),
             ((), MethodArgs(method="adalora"), "rank patterns"),
             (("--save_strategy", "no"), MethodArgs(), "needs checkpoints"),
             (("--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2"), MethodArgs(), "only 2"),
             ((), MethodArgs(early_stopping_patience=2), "load_best_model_at_end")]
    for flags, method_args, message in cases:
        with pytest.raises(EnsembleError, match=message):
            check_checkpoint_averaging(3, _train_args(tmp_path, *flags, "--num_train_epochs", "5"), method_args)


class _Trainer:
    def __init__(self, model, output_dir):
        self.model, self.args = model, type("Args", (), {"output_dir": str(output_dir)})()


def test_average_last_checkpoints_loads_the_mean_of_their_weights(tmp_path, tiny_classifier):
    model = tiny_classifier("bert")
    for step in (1, 2, 3):
        torch.manual_seed(step)
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn_like(param))
        model.save_pretrained(tmp_path / f"checkpoint-{step}")
    trainer = _Trainer(tiny_classifier("bert"), tmp_path)
    assert average_last_checkpoints(trainer, 2) == ["checkpoint-2", "checkpoint-3"]
    states = [load_file(str(tmp_path / f"checkpoint-{s}" / "model.safetensors")) for s in (2, 3)]
    loaded = trainer.model.state_dict()
    for key in states[0]:
        torch.testing.assert_close(loaded[key], (states[0][key] + states[1][key]) / 2, rtol=0, atol=1e-7)
    with pytest.raises(EnsembleError, match="holds 3 checkpoint"):
        average_last_checkpoints(trainer, 4)
    (tmp_path / "checkpoint-4").mkdir()
    save_file({"other": torch.zeros(2)}, str(tmp_path / "checkpoint-4" / "model.safetensors"))
    with pytest.raises(EnsembleError, match="other weights"):
        average_last_checkpoints(trainer, 2)


def test_average_tensors_keeps_dtype_and_integer_tensors():
    halves = [torch.tensor([1.0, 2.0], dtype=torch.float16), torch.tensor([2.0, 5.0], dtype=torch.float16)]
    assert average_tensors(halves).dtype == torch.float16 and average_tensors(halves).tolist() == [1.5, 3.5]
    ids = [torch.tensor([1, 2]), torch.tensor([3, 4])]
    assert average_tensors(ids).tolist() == [3, 4]  # not a weight: the last checkpoint's
