"""Task specs and MultiTaskArgs: both ways of writing a task, shared settings, errors naming field, value and fix."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tlnlp.config import ConfigError, ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs
from tlnlp.multitask import MultiTaskArgs, TaskSpecError, build_task_specs, check_multitask_method, check_task_data

TYPES = (ModelArgs, MethodArgs, MultiTaskArgs, TrainingArgs)


def test_string_and_mapping_tasks_resolve_to_typed_data_args_with_the_shared_settings():
    movie, amazon, own = build_task_specs(
        ["dataset=bundled:movie_sentiment,train_samples_per_class=8",
         {"dataset": "bundled:amazon_sentiment", "max_train_samples": 1000, "max_predict_samples": 50},
         {"train_file": "data/my_reviews.csv", "name": "mine", "text_column": "review"}],
        {"max_seq_length": 64, "max_predict_samples": 500, "split_seed": 3})
    assert [s.name for s in (movie, amazon, own)] == ["movie_sentiment", "amazon_sentiment", "mine"]
    assert [s.index for s in (movie, amazon, own)] == [0, 1, 2]
    assert movie.data_args.train_samples_per_class == 8 and movie.data_args.max_seq_length == 64
    assert movie.data_args.max_predict_samples == 500 and movie.data_args.split_seed == 3  # the run's defaults
    assert amazon.data_args.max_train_samples == 1000 and amazon.data_args.max_predict_samples == 50  # its own
    assert own.data_args.train_file == "data/my_reviews.csv" and own.data_args.text_column == "review"
    assert own.dataset == "data/my_reviews.csv"


def test_a_file_task_is_named_after_its_file():
    (spec,) = build_task_specs(["train_file=/data/sms-spam.v2.csv"])
    assert spec.name == "sms-spam_v2"


@pytest.mark.parametrize("tasks, words", [
    (["dataset=bundled:trec6", "dataset=bundled:trec6,max_train_samples=10"],
     ["tasks[0] and tasks[1] are both named 'trec6'", "unique", "name=trec6_2"]),
    (["dataset=bundled:trec6,max_train_sample=5"],
     ["tasks[0]", "'max_train_sample'", "Did you mean 'max_train_samples'"]),
    (["dataset=bundled:trec6,learning_rate=1e-4"], ["'learning_rate' is a setting of the whole multi-task run",
                                                    "--learning_rate"]),
    (["dataset=bundled:trec6,max_seq_length=32"], ["'max_seq_length' is a setting of the whole multi-task run"]),
    (["name=x"], ["tasks[0]", "no data", "dataset=<name>"]),
    (["dataset=bundled:trec6,name=a.b"], ["name='a.b'", "letters, digits"]),
    (["dataset=bundled:trec6,max_train_samples"], ["'max_train_samples' is not key=value"]),
    (["dataset=bundled:trec6,max_train_samples=abc"], ["tasks[0] (trec6)", "max_train_samples", "invalid int value"]),
    (["dataset=bundled:trec6,max_train_samples=0"], ["tasks[0] (trec6)", "max_train_samples=0 must be a positive"]),
    ([], ["tasks is empty"]),
])
def test_bad_tasks_are_refused_naming_task_key_value_and_fix(tasks, words):
    with pytest.raises(TaskSpecError) as err:
        build_task_specs(tasks)
    for word in words:
        assert word in str(err.value), str(err.value)


def _parse(*flags: str):
    return parse_args(*TYPES, args=["--output_dir", "/tmp/never", *flags])


@pytest.mark.parametrize("flags, words", [
    (["--tasks", "dataset=bundled:trec6", "--sampling", "uniform"],
     ["sampling='uniform' is not valid", "proportional, temperature, round_robin"]),
    (["--tasks", "dataset=bundled:trec6", "--temperature", "0"],
     ["temperature=0.0 must be > 0", "T=1 is proportional"]),
    (["--tasks", "dataset=bundled:trec6", "--temperature", "-1"], ["temperature=-1.0 must be > 0"]),
    (["--tasks", "dataset=bundled:trec6", "--baseline", "alone"], ["baseline='alone' is not valid", "single_task"]),
    (["--tasks", "dataset=bundled:trec6", "dataset=bundled:sms_spam", "--target_task", "sms"],
     ["target_task='sms' is not a task", "trec6, sms_spam"]),
    (["--tasks", "dataset=bundled:trec6", "dataset=bundled:trec6"], ["both named 'trec6'"]),
    (["--output_dir", "x"], ["tasks is empty"]),
])
def test_bad_run_settings_are_config_errors_that_name_the_field(flags, words):
    with pytest.raises(ConfigError) as err:
        _parse(*flags)
    for word in words:
        assert word in str(err.value), str(err.value)


def test_flags_override_the_yaml_and_tasks_come_from_a_yaml_list(tmp_path):
    config = tmp_path / "mt.yaml"
    config.write_text("tasks:\n  - dataset=bundled:trec6\n  - {dataset: bundled:sms_spam, max_train_samples: 20}\n"
                      "sampling: round_robin\ntemperature: 3\noutput_dir: out\n")
    _, _, mt, train = parse_args(*TYPES, args=["--config", str(config), "--sampling", "temperature"])
    assert mt.sampling == "temperature" and mt.temperature == 3.0 and train.output_dir == "out"
    assert [s.name for s in build_task_specs(mt.tasks, mt.data_defaults())] == ["trec6", "sms_spam"]


@pytest.mark.parametrize("method, words", [
    ("setfit", ["method='setfit' is not supported", "full, frozen_backbone, lora"]),
    ("prefix_tuning", ["method='prefix_tuning' is not supported"]),
])
def test_unsupported_methods_are_refused_with_the_list(method, words):
    with pytest.raises(TaskSpecError) as err:
        check_multitask_method(MethodArgs(method=method))
    for word in words:
        assert word in str(err.value)
    check_multitask_method(MethodArgs(method="lora"))  # supported: no error


def test_layer_wise_method_options_and_early_stopping_are_refused():
    with pytest.raises(TaskSpecError, match="method options of ulmfit"):
        check_multitask_method(MethodArgs(method="full", discriminative_factor=0.9))
    with pytest.raises(TaskSpecError, match="early_stopping_patience=2 is not supported"):
        check_multitask_method(MethodArgs(method="full", early_stopping_patience=2))


def test_multi_label_and_empty_tasks_are_refused_naming_the_task():
    (spec,) = build_task_specs(["train_file=tags.csv,label_separator=|"])
    data = SimpleNamespace(name="tags.csv", multi_label=True, splits={"train": [1, 2]})
    with pytest.raises(TaskSpecError, match=r"tasks\[0\] \(tags: tags.csv\) is multi-label.*single-label"):
        check_task_data(spec, data)
    with pytest.raises(TaskSpecError, match="has no training rows"):
        check_task_data(spec, SimpleNamespace(name="tags.csv", multi_label=False, splits={"train": []}))
