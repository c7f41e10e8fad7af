"""Methods as plugins: registration, composed MethodArgs, entry points, hooks reaching the trainer."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint

import pytest
import torch

import tlnlp.registry as registry_module
from tlnlp.methods import (
    METHODS,
    Method,
    MethodArgs,
    MethodPluginError,
    MethodResult,
    apply_method,
    load_method_plugins,
    method_args_class,
    register_method,
    reload_run,
)
from tlnlp.tasks import TASKS


@pytest.fixture
def registry():
    """Undo every registration a test makes."""
    saved = dict(METHODS._items)
    yield METHODS
    METHODS._items.clear()
    METHODS._items.update(saved)


@dataclass
class _FreezeOptions:
    freeze_embeddings_too: bool = field(default=True, metadata={"help": "Also freeze the position embeddings."})


class FreezeEmbeddings(Method):
    """Freeze the input embeddings, train the rest."""

    name = "freeze_embeddings_test"
    options = _FreezeOptions
    description = "The input embeddings stay frozen; every other weight and the new {head} train."

    def validate(self, args):
        if args.method == self.name and not isinstance(args.freeze_embeddings_too, bool):
            raise ValueError("freeze_embeddings_too must be true or false.")

    def prepare(self, model, args):
        for param in model.get_input_embeddings().parameters():
            param.requires_grad_(False)
        return model


def test_import_config_imports_no_method_training_or_hub_module():
    code = ("import sys, tlnlp.config; print(sorted(m for m in sys.modules if m.startswith(('tlnlp.methods', "
            "'tlnlp.training', 'tlnlp.hub', 'tlnlp.tasks', 'tlnlp.runs'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_method_is_a_registered_method_instance():
    assert {"full", "feature_extraction", "ulmfit", "lora", "adalora", "prompt_tuning"} <= set(METHODS.names())
    assert all(isinstance(METHODS.get(name), Method) for name in METHODS.names())
    assert all(METHODS.get(name).name == name for name in METHODS.names())


def test_method_args_are_composed_from_the_options_of_every_method():
    names = [f.name for f in dataclasses.fields(MethodArgs)]
    assert names[:2] == ["method", "early_stopping_patience"]
    assert {"lora_r", "merge_adapter", "discriminative_factor", "blocks_per_group"} <= set(names)
    assert MethodArgs(method="ulmfit").ulmfit_settings().discriminative_factor == pytest.approx(1 / 0.95)
    assert method_args_class() is MethodArgs  # nothing new registered: the same class


def test_a_registered_plugin_adds_its_flags_and_runs_its_hooks(registry, tiny_classifier):
    from tlnlp.config import parse_args

    register_method(FreezeEmbeddings)
    with pytest.raises(TypeError, match="already registered|register_method"):
        register_method(object)  # type: ignore[arg-type]
    args_class = method_args_class()
    assert args_class is not MethodArgs and "freeze_embeddings_too" in {f.name for f in dataclasses.fields(args_class)}
    (args,) = parse_args(args_class, args=["--method", "freeze_embeddings_test", "--freeze_embeddings_too", "false"])
    assert args.freeze_embeddings_too is False
    model, groups = apply_method(tiny_classifier("bert"), args)
    frozen = {id(p) for p in model.get_input_embeddings().parameters()}
    assert groups is None and all(p.requires_grad == (id(p) not in frozen) for p in model.parameters())
    assert MethodArgs(method="freeze_embeddings_test").method == "freeze_embeddings_test"  # no options needed
    described = METHODS.get("freeze_embeddings_test").describe(TASKS.get("classification"))
    assert described.endswith("new classification head train.")


def test_options_must_be_flags(registry):
    @dataclass
    class NoDefault:
        rank: int

    class Bad(Method):
        name = "bad_options_test"
        options = NoDefault

    METHODS.register("bad_options_test", Bad())
    with pytest.raises(TypeError, match="need a default"):
        method_args_class()


def _entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group="tlnlp.methods")


def test_entry_points_register_classes_and_instances_once(registry, monkeypatch):
    module = type(sys)("tlnlp_test_plugin")
    module.FreezeEmbeddings = FreezeEmbeddings
    module.instance = type("Other", (FreezeEmbeddings,), {"name": "other_plugin_test"})()
    monkeypatch.setitem(sys.modules, "tlnlp_test_plugin", module)
    found = [_entry_point("freeze", "tlnlp_test_plugin:FreezeEmbeddings"),
             _entry_point("other", "tlnlp_test_plugin:instance")]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: found if group == "tlnlp.methods" else [])
    assert load_method_plugins() == ["freeze_embeddings_test", "other_plugin_test"]
    assert load_method_plugins() == ["freeze_embeddings_test", "other_plugin_test"]  # idempotent
    assert isinstance(METHODS.get("other_plugin_test"), FreezeEmbeddings)


@pytest.mark.parametrize(("value", "message"), [("tlnlp_no_such_module:Thing", "No module named"),
                                                ("builtins:len", "not a Method")])
def test_a_broken_plugin_names_its_entry_point(registry, monkeypatch, value, message):
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [_entry_point("broken", value)])
    with pytest.raises(MethodPluginError, match=f"'broken' \\({value}.*{message}"):
        load_method_plugins()


def test_method_result_carries_args_and_active_methods(tiny_classifier):
    result = apply_method(tiny_classifier("bert"), MethodArgs(method="lora", lora_r=2, discriminative_factor=2.0))
    assert [m.name for m in result.methods] == ["lora", "ulmfit"]
    assert result.method_args.method == "lora" and isinstance(result.param_groups, list)
    model, groups = result
    assert model is result.model and groups is result.param_groups
    assert [m.name for m in MethodResult(torch.nn.Linear(1, 1), None, MethodArgs()).methods] == ["full"]


def test_build_trainer_refuses_a_bare_model(tmp_path, tiny_classifier, tokenizer):
    from datasets import Dataset, DatasetDict
    from transformers import TrainingArguments

    from tlnlp.training import build_trainer

    data = DatasetDict(train=Dataset.from_dict({**tokenizer(["a", "b"]), "labels": [0, 1]}))
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with pytest.raises(TypeError, match="apply_method"):
        build_trainer(tiny_classifier("bert"), tokenizer, data, args)


def test_reload_run_ignores_plain_folders(tmp_path):
    assert reload_run(tmp_path) is None


def test_help_lists_every_method_flag(capsys):
    from tlnlp.config import parse_args

    with pytest.raises(SystemExit):
        parse_args(MethodArgs, args=["--help"])
    text = capsys.readouterr().out
    missing = [f.name for f in dataclasses.fields(MethodArgs) if f"--{f.name}" not in text]
    assert not missing
