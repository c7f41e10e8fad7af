"""Stage specs: both ways of writing a stage, typed values, and errors that name the stage, key, value and fix."""

from __future__ import annotations

import pytest

from tlnlp.config import ConfigError, ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs
from tlnlp.staged import StagedArgs, StageSpecError, build_stage_specs, parse_stage_item
from tlnlp.staged.spec import stage_training_args

TYPES = (ModelArgs, MethodArgs, StagedArgs, TrainingArgs)


def _specs(*stages, method="full", **defaults):
    return build_stage_specs(list(stages), MethodArgs(method=method), defaults)


def test_string_and_mapping_stages_resolve_to_typed_args_and_overrides():
    first, second = _specs(
        "dataset=bundled:amazon_sentiment,method=full,epochs=1,learning_rate=5e-5,max_train_samples=300",
        {"dataset": "bundled:movie_sentiment", "train_samples_per_class": 8, "epochs": 10, "new_head": True,
         "name": "movie"},
        max_seq_length=64)
    assert first.index == 1 and first.name == "stage1_amazon_sentiment"
    assert first.data_args.dataset_name == "bundled:amazon_sentiment" and first.data_args.max_train_samples == 300
    assert first.data_args.max_seq_length == 64  # the chain's default
    assert first.training == {"num_train_epochs": 1.0, "learning_rate": 5e-5}
    assert not first.new_head and first.method == "full"
    assert second.name == "stage2_movie" and second.new_head is True
    assert second.data_args.train_samples_per_class == 8 and second.training == {"num_train_epochs": 10.0}


def test_stage_method_and_options_default_to_the_chain_and_adapters_merge_for_the_next_stage():
    first, second = _specs("dataset=bundled:trec6,lora_r=4", "dataset=bundled:movie_sentiment,method=full",
                           method="lora")
    assert first.method == "lora" and first.method_args.lora_r == 4
    assert first.method_args.merge_adapter is True  # the next stage starts from <stage>/merged
    assert second.method == "full" and second.method_args.merge_adapter is False


def test_stage_training_args_override_only_what_the_stage_sets(tmp_path):
    (train,) = parse_args(TrainingArgs, args=["--output_dir", str(tmp_path / "chain"), "--learning_rate", "1e-4",
                                              "--num_train_epochs", "3", "--push_to_hub", "false"])
    (spec,) = _specs("dataset=bundled:trec6,epochs=1")
    args = stage_training_args(train, spec, tmp_path / "chain" / spec.name, {"learning_rate": 1e-4})
    assert args.num_train_epochs == 1.0 and args.learning_rate == 1e-4
    assert args.output_dir.endswith("stage1_trec6") and args.overwrite_output_dir and not args.push_to_hub
    assert train.num_train_epochs == 3.0  # the chain's arguments are untouched


@pytest.mark.parametrize("item, words", [
    ("dataset=bundled:trec6,epoch=1", ["stages[0]", "'epoch'", "Did you mean 'epochs'"]),
    ("dataset=bundled:trec6,epochs", ["stages[0]", "'epochs' is not key=value", "dataset=bundled:trec6"]),
    ("method=full,epochs=1", ["stages[0]", "no data", "dataset=<name>"]),
    ("dataset=bundled:trec6,seed=3", ["'seed' is a setting of the whole chain", "--seed"]),
    ("dataset=bundled:trec6,model_name_or_path=x", ["whole chain", "--model_name_or_path"]),
    ("dataset=bundled:trec6,epochs=1,num_train_epochs=2", ["given twice"]),
])
def test_bad_stage_syntax_is_refused_naming_stage_key_and_fix(item, words):
    with pytest.raises(StageSpecError) as err:
        parse_stage_item(item, 0)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("stages, words", [
    (["dataset=bundled:trec6", "dataset=bundled:movie_sentiment,epochs=abc"],
     ["stages[1] (stage 2: bundled:movie_sentiment)", "num_train_epochs", "'abc'"]),
    (["dataset=bundled:trec6,max_train_samples=-5"], ["stages[0]", "max_train_samples=-5", "positive"]),
    (["dataset=bundled:trec6,method=fulll"], ["method='fulll'", "full"]),
    (["dataset=bundled:trec6,method=setfit", "dataset=bundled:movie_sentiment"],
     ["method='setfit'", "without the Trainer", "lora"]),
    (["dataset=bundled:trec6,method=prompt_tuning", "dataset=bundled:movie_sentiment"],
     ["prompt_tuning", "last stage only"]),
    (["dataset=bundled:trec6,method=lora,merge_adapter=false", "dataset=bundled:movie_sentiment"],
     ["merge_adapter=false", "Drop merge_adapter"]),
    (["dataset=bundled:trec6,name=a/b"], ["name='a/b'", "folder name"]),
])
def test_bad_stage_values_are_refused_before_any_work(stages, words):
    with pytest.raises(StageSpecError) as err:
        _specs(*stages)
    for word in words:
        assert word in str(err.value), str(err.value)


def test_chain_flags_are_checked_when_parsed(tmp_path):
    base = ["--output_dir", str(tmp_path / "x")]
    cases = [
        (["--stages", "dataset=bundled:trec6,epoch=1"], "Did you mean 'epochs'"),
        (["--stages", "dataset=bundled:trec6", "--baseline", "target"], "baseline='target'"),
        (["--stages", "dataset=bundled:trec6", "--baseline", "target_only"], "one stage"),
        (["--stages", "dataset=bundled:trec6", "dataset=bundled:sms_spam", "--rehearsal_samples", "-1"],
         "rehearsal_samples=-1"),
        ([], "stages is empty"),
    ]
    for flags, words in cases:
        with pytest.raises(ConfigError) as err:
            parse_args(*TYPES, args=[*base, *flags])
        assert words in str(err.value), (flags, str(err.value))
    parsed = parse_args(*TYPES, args=[*base, "--stages", "dataset=bundled:trec6", "dataset=bundled:movie_sentiment",
                                      "--rehearsal_samples", "4", "--baseline", "target_only"])
    assert parsed[2].stages == ["dataset=bundled:trec6", "dataset=bundled:movie_sentiment"]
    assert parsed[2].rehearsal_samples == 4 and parsed[2].baseline == "target_only"


def test_local_files_and_hub_names_are_stage_sources_too(tmp_path):
    csv = tmp_path / "my reviews.csv"
    csv.write_text("text,label\ngood,pos\nbad,neg\n")
    first, second = _specs(f"train_file={csv},text_column=text,epochs=1", "dataset=org/some_dataset,name=hub")
    assert first.data_args.train_file == str(csv) and first.name == "stage1_my_reviews"
    assert first.dataset == str(csv)
    assert second.data_args.dataset_name == "org/some_dataset" and second.name == "stage2_hub"
    (third,) = _specs({"dataset": "imdb", "target_modules": ["query", "value"], "method": "lora"})
    assert third.name == "stage1_imdb" and third.method_args.target_modules == ["query", "value"]
    (fourth,) = _specs("dataset=imdb,method=lora,target_modules=query value")
    assert fourth.method_args.target_modules == ["query", "value"]
