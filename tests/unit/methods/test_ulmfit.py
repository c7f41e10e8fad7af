"""ULMFiT as a method and as options of any method: layer-wise groups, rates per group, frozen groups untouched."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import TrainingArguments

from tlnlp.methods import MethodArgs, MethodResult, apply_method, build_optimizer
from tlnlp.methods.ulmfit.unfreezing import FrozenAwareAdamW, zero_frozen_grads
from tlnlp.models import get_layer_groups
from tlnlp.training import build_trainer

LR = 1e-3


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True, per_device_train_batch_size=4,
                learning_rate=LR, num_train_epochs=1, logging_steps=1, save_strategy="no", eval_strategy="no",
                max_grad_norm=1.0, seed=0)
    return TrainingArguments(**{**base, **kw})


def _group_lrs(optimizer) -> dict[str, float]:
    rates: dict[str, set[float]] = {}
    for group in optimizer.param_groups:
        rates.setdefault(group["name"], set()).add(group["lr"])
    assert all(len(v) == 1 for v in rates.values()), rates  # decay / no-decay halves share the rate
    return {name: next(iter(v)) for name, v in rates.items()}


def test_defaults_resolve_per_method():
    transformer = MethodArgs(method="ulmfit").ulmfit_settings()
    assert transformer.preset == "transformer"
    assert transformer.discriminative_factor == pytest.approx(1 / 0.95)  # per-block decay 0.95 (Sun et al. 2019)
    assert (transformer.lr_schedule, transformer.gradual_unfreezing, transformer.unfreeze_fraction) == (
        "slanted_triangular", "fraction", 0.1)
    assert (transformer.cut_frac, transformer.stlr_ratio) == (0.1, 32.0)
    paper = MethodArgs(method="ulmfit", ulmfit_preset="paper").ulmfit_settings()
    assert (paper.discriminative_factor, paper.lr_schedule, paper.gradual_unfreezing) == (2.6, "slanted_triangular",
                                                                                          "epoch")
    assert paper.unfreeze_fraction is None
    # the paper's values also by their own flags, and a flag wins over the preset
    flags = MethodArgs(method="ulmfit", discriminative_factor=2.6, gradual_unfreezing="epoch").ulmfit_settings()
    assert (flags.discriminative_factor, flags.gradual_unfreezing) == (2.6, "epoch")
    assert MethodArgs(method="ulmfit", ulmfit_preset="paper", discriminative_factor=1.5).ulmfit_settings() \
        .discriminative_factor == 1.5
    plain = MethodArgs(method="full").ulmfit_settings()
    assert not plain.active and not plain.layerwise and plain.preset is None
    assert MethodArgs(method="full", ulmfit_preset="paper").ulmfit_settings().gradual_unfreezing == "epoch"
    steps = MethodArgs(method="full", unfreeze_every_steps=5).ulmfit_settings()
    assert steps.gradual_unfreezing == "steps" and steps.layerwise
    fraction = MethodArgs(method="full", unfreeze_fraction=0.3).ulmfit_settings()
    assert (fraction.gradual_unfreezing, fraction.unfreeze_fraction) == ("fraction", 0.3)
    assert MethodArgs(method="ulmfit", unfreeze_every_steps=4).ulmfit_settings().unfreeze_fraction is None


@pytest.mark.parametrize("kwargs,message", [
    ({"discriminative_factor": 0.0}, "discriminative_factor=0.0"),
    ({"lr_schedule": "triangle"}, "lr_schedule='triangle'"),
    ({"ulmfit_preset": "lstm"}, "ulmfit_preset='lstm' is not valid; choose one of: transformer, paper"),
    ({"gradual_unfreezing": "steps"}, "unfreeze_every_steps"),
    ({"gradual_unfreezing": "epoch", "unfreeze_every_steps": 3}, "only applies to --gradual_unfreezing steps"),
    ({"gradual_unfreezing": "fraction", "unfreeze_every_steps": 3}, "only applies to --gradual_unfreezing steps"),
    ({"gradual_unfreezing": "epoch", "unfreeze_fraction": 0.2}, "only applies to --gradual_unfreezing fraction"),
    ({"unfreeze_every_steps": 3, "unfreeze_fraction": 0.2}, "give only one"),
    ({"unfreeze_fraction": 0.0}, "unfreeze_fraction=0.0"),
    ({"unfreeze_fraction": 1.5}, "unfreeze_fraction=1.5"),
    ({"cut_frac": 1.5}, "cut_frac=1.5"),
    ({"stlr_ratio": 0.5}, "stlr_ratio=0.5"),
    ({"blocks_per_group": 0}, "blocks_per_group=0"),
    ({"head_warmup_steps": -1}, "head_warmup_steps=-1"),
])
def test_bad_options_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MethodArgs(method="ulmfit", **kwargs)


@pytest.mark.parametrize("preset,factor", [(None, 1 / 0.95), ("paper", 2.6)])
def test_every_group_rate_follows_the_formula_for_each_architecture(tmp_path, tiny_classifier, arch, preset, factor):
    model = tiny_classifier(arch)
    model, groups = apply_method(model, MethodArgs(method="ulmfit", ulmfit_preset=preset))
    layer_groups = get_layer_groups(model)
    n = len(layer_groups)
    assert [g["name"] for g in groups if g["thaw_order"] is not None] == [g.name for g in layer_groups]
    names = [name for g in groups for name, p in model.named_parameters() if any(p is q for q in g["params"])]
    assert sorted(names) == sorted(name for name, _ in model.named_parameters())  # each parameter exactly once
    rates = _group_lrs(build_optimizer(_args(tmp_path), groups))
    for index, group in enumerate(layer_groups):
        assert rates[group.name] == pytest.approx(LR / factor ** (n - 1 - index), rel=1e-12), group.name
    # the head gets the base rate and thaws first; the embeddings thaw last
    assert rates["head"] == pytest.approx(LR)
    orders = {g["name"]: g["thaw_order"] for g in groups}
    assert orders["head"] == 0 and orders["embeddings"] == n - 1


def test_discriminative_rates_alone_with_method_full_and_feature_extraction(tmp_path, tiny_classifier):
    model, groups = apply_method(tiny_classifier("bert"), MethodArgs(method="full", discriminative_factor=2.0))
    rates = _group_lrs(build_optimizer(_args(tmp_path), groups))
    assert rates == pytest.approx({"embeddings": LR / 8, "block_0": LR / 4, "block_1": LR / 2, "head": LR})
    _, groups = apply_method(tiny_classifier("bert"), MethodArgs(method="frozen_backbone",
                                                                 discriminative_factor=2.0))
    assert [g["name"] for g in groups] == ["head"]  # frozen backbone: only the head's group, at the base rate


def test_blocks_per_group_merges_blocks_from_the_top(tiny_classifier):
    model = tiny_classifier("bert", num_hidden_layers=5)
    _, groups = apply_method(model, MethodArgs(method="ulmfit", ulmfit_preset="paper", blocks_per_group=2))
    assert [g["name"] for g in groups] == ["embeddings", "block_0", "blocks_1-2", "blocks_3-4", "head"]
    assert [g["lr_scale"] for g in groups] == pytest.approx([2.6 ** -i for i in range(4, -1, -1)])


def test_frozen_aware_adamw_leaves_frozen_groups_bit_identical_with_no_state():
    torch.manual_seed(0)
    frozen, trained = torch.nn.Parameter(torch.randn(4, 4)), torch.nn.Parameter(torch.randn(4, 4))
    opt = FrozenAwareAdamW([{"params": [frozen], "lr": 0.0, "frozen": True}, {"params": [trained], "lr": 0.1}],
                           weight_decay=0.1)
    before = frozen.detach().clone()
    for _ in range(3):
        (frozen * trained).sum().backward()
        opt.step()
    assert torch.equal(frozen, before)
    assert frozen not in opt.state and opt.state[trained]["step"] == 3
    assert len(opt.param_groups) == 2  # the groups are restored after each step
    opt.param_groups[0].update(frozen=False, lr=0.1)  # thawed: its Adam state starts from zero
    (frozen * trained).sum().backward()
    opt.step()
    assert opt.state[frozen]["step"] == 1 and not torch.equal(frozen, before)


def test_zero_frozen_grads_only_touches_frozen_groups():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = FrozenAwareAdamW([{"params": [a], "frozen": True}, {"params": [b]}])
    (a * b * 3).sum().backward()
    assert zero_frozen_grads(opt) == 1
    assert torch.equal(a.grad, torch.zeros(2)) and torch.equal(b.grad, torch.full((2,), 3.0))


def _tokenized(tokenizer, rows=32):
    texts = ["good film", "bad film", "great fun", "awful bore", "a fine, warm story", "dull and long"] * 8
    enc = tokenizer(texts[:rows])
    ds = Dataset.from_dict({**enc, "labels": [i % 2 for i in range(rows)]})
    return DatasetDict(train=ds)


def _train(tmp_path, tiny_classifier, tokenizer, method_args, **train_kw):
    model = tiny_classifier("bert", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    prepared = apply_method(model, method_args)
    model = prepared.model
    trainer = build_trainer(prepared, tokenizer, _tokenized(tokenizer), _args(tmp_path, **train_kw))
    trainer.train()
    return model, start, trainer


def test_gradual_unfreezing_in_training_keeps_frozen_groups_bit_identical(tmp_path, tiny_classifier, tokenizer):
    # 8 steps, one more group every 3 steps: head from 0, block_1 from 3, block_0 from 6, embeddings never
    method_args = MethodArgs(method="ulmfit", gradual_unfreezing="steps", unfreeze_every_steps=3)
    model, start, trainer = _train(tmp_path, tiny_classifier, tokenizer, method_args, max_steps=8)
    groups = {g.name: g.param_names for g in get_layer_groups(model)}
    params = dict(model.named_parameters())
    for name in groups["embeddings"]:
        assert torch.equal(params[name], start[name]), name
    for group in ("block_0", "block_1", "head"):
        changed = [n for n in groups[group] if not torch.equal(params[n], start[n])]
        assert changed, group
    opt = trainer.optimizer
    frozen_ids = {id(params[n]) for n in groups["embeddings"]}
    assert not any(id(p) in frozen_ids for p in opt.state)  # no Adam state built up for a frozen group
    # block_0 thawed at step 6: its Adam step count is the number of steps since its thaw
    block0 = next(params[n] for n in groups["block_0"])
    assert int(opt.state[block0]["step"]) == 2
    # per-group rates in the logs (and so in TensorBoard): 0 while frozen, positive after the thaw
    logs = [e for e in trainer.state.log_history if "lr/head" in e]
    assert len(logs) == 8
    assert [e["lr/block_1"] > 0 for e in logs] == [False] * 3 + [True] * 5
    assert all(e["lr/embeddings"] == 0.0 for e in logs)
    assert all(e["learning_rate"] == e["lr/head"] for e in logs)


def test_fraction_unfreezing_spaces_thaws_over_the_trainers_steps(tmp_path, tiny_classifier, tokenizer):
    # 32 rows, batch 4, 2 epochs: the Trainer's max_steps is 16; every group trains by 0.75 x 16 = step 12, so one
    # more group every 4 steps: head from 0, block_1 from 4, block_0 from 8, embeddings from 12
    method_args = MethodArgs(method="ulmfit", unfreeze_fraction=0.75)
    model, start, trainer = _train(tmp_path, tiny_classifier, tokenizer, method_args, num_train_epochs=2)
    assert trainer.state.max_steps == 16
    assert sorted(set(trainer.lr_scheduler.thaw_steps)) == [0, 4, 8, 12]
    logs = [e for e in trainer.state.log_history if "lr/head" in e]
    assert [e["lr/embeddings"] > 0 for e in logs] == [False] * 12 + [True] * 4
    assert [e["lr/block_0"] > 0 for e in logs] == [False] * 8 + [True] * 8
    params = dict(model.named_parameters())
    embeddings = next(g.param_names for g in get_layer_groups(model) if g.name == "embeddings")
    assert any(not torch.equal(params[n], start[n]) for n in embeddings)  # thawed and trained for 4 steps
    assert int(trainer.optimizer.state[params[embeddings[0]]]["step"]) == 4


def test_default_ulmfit_trains_every_group_from_the_first_tenth_of_the_run(tmp_path, tiny_classifier, tokenizer):
    model, start, trainer = _train(tmp_path, tiny_classifier, tokenizer, MethodArgs(method="ulmfit"), max_steps=30)
    assert sorted(set(trainer.lr_scheduler.thaw_steps)) == [0, 1, 2, 3]  # 3 groups below the head by step 3
    params = dict(model.named_parameters())
    for group in get_layer_groups(model):
        assert any(not torch.equal(params[n], start[n]) for n in group.param_names), group.name
    last = [e for e in trainer.state.log_history if "lr/head" in e][-1]
    assert last["lr/embeddings"] == pytest.approx(last["lr/head"] * 0.95 ** 3)


def test_trainer_schedules_compose_with_unfreezing_and_discriminative_rates(tmp_path, tiny_classifier, tokenizer):
    method_args = MethodArgs(method="full", discriminative_factor=2.0, unfreeze_every_steps=2)
    _, _, trainer = _train(tmp_path, tiny_classifier, tokenizer, method_args, max_steps=6,
                           lr_scheduler_type="linear")
    logs = [e for e in trainer.state.log_history if "lr/head" in e]
    for step, entry in enumerate(logs):
        linear = LR * (6 - step) / 6
        assert entry["lr/head"] == pytest.approx(linear)
        assert entry["lr/block_1"] == pytest.approx(linear / 2 if step >= 2 else 0.0)
        assert entry["lr/block_0"] == pytest.approx(linear / 4 if step >= 4 else 0.0)
        assert entry["lr/embeddings"] == 0.0


def test_slanted_triangular_alone_keeps_the_default_optimizer(tmp_path, tiny_classifier, tokenizer):
    method_args = MethodArgs(method="full", lr_schedule="slanted_triangular")
    _, _, trainer = _train(tmp_path, tiny_classifier, tokenizer, method_args, max_steps=20)
    lrs = [e["learning_rate"] for e in trainer.state.log_history if "learning_rate" in e]
    assert lrs[0] == pytest.approx(LR / 32) and lrs[2] == pytest.approx(LR)  # cut = 2
    assert (tmp_path / "out" / "learning_rates.png").is_file()


def test_unfreezing_without_layerwise_groups_is_refused(tmp_path, tiny_classifier, tokenizer):
    with pytest.raises(ValueError, match="apply_method"):
        build_trainer(MethodResult(tiny_classifier("bert"), None, MethodArgs(method="ulmfit")), tokenizer,
                      _tokenized(tokenizer), _args(tmp_path))


def test_per_group_rates_reach_tensorboard(tmp_path, tiny_classifier, tokenizer):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    method_args = MethodArgs(method="ulmfit", unfreeze_every_steps=2)
    _train(tmp_path, tiny_classifier, tokenizer, method_args, max_steps=4, report_to="tensorboard")
    events = sorted((tmp_path / "out" / "runs").rglob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"train/lr/head", "train/lr/block_1", "train/lr/block_0", "train/lr/embeddings"} <= set(tags), tags
    block_1 = [e.value for e in acc.Scalars("train/lr/block_1")]
    assert block_1[:2] == [0.0, 0.0] and block_1[2] > 0
