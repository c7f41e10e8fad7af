"""The Hugging Face example scripts' flag names work as aliases, on the command line and in YAML."""

from __future__ import annotations

import pytest

from tlnlp.config import ConfigError, DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.config.parser import resolved_config

TYPES = (ModelArgs, DataArgs, TrainingArgs)
BASE = ["--dataset_name", "bundled:movie_sentiment", "--output_dir", "out"]


def test_old_and_hf_names_reach_the_same_fields():
    model, data, _ = parse_args(*TYPES, args=[*BASE, "--revision", "v1.0", "--torch_dtype", "float32",
                                              "--label_column_name", "stars"])
    assert (model.model_revision, model.dtype, data.label_column) == ("v1.0", "float32", "stars")
    model, data, _ = parse_args(*TYPES, args=[*BASE, "--model_revision", "abc", "--dtype", "bfloat16",
                                              "--text_column_names", "review"])
    assert (model.model_revision, model.dtype, data.text_column, data.text_pair_column) == (
        "abc", "bfloat16", "review", None)


def test_text_column_names_with_two_columns_names_the_pair():
    _, data, _ = parse_args(*TYPES, args=[*BASE, "--text_column_names", "premise,hypothesis"])
    assert (data.text_column, data.text_pair_column) == ("premise", "hypothesis")
    with pytest.raises(ConfigError, match="text_column='a,b,c'"):
        parse_args(*TYPES, args=[*BASE, "--text_column_names", "a,b,c"])


def test_yaml_keys_take_the_aliases_and_refuse_both_names(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("dataset_name: bundled:trec6\noutput_dir: out\nrevision: v2\ntorch_dtype: float16\n"
                      "label_column_name: coarse\n")
    model, data, _ = parse_args(*TYPES, args=["--config", str(config)])
    assert (model.model_revision, model.dtype, data.label_column) == ("v2", "float16", "coarse")
    written = resolved_config(model, data)
    assert written["model_revision"] == "v2" and "revision" not in written
    config.write_text("dataset_name: bundled:trec6\noutput_dir: out\nrevision: v2\nmodel_revision: v3\n")
    with pytest.raises(ConfigError, match="both 'revision' and 'model_revision'"):
        parse_args(*TYPES, args=["--config", str(config)])


def test_a_bad_dtype_names_the_field():
    with pytest.raises(ConfigError, match="dtype='float8'"):
        parse_args(*TYPES, args=[*BASE, "--dtype", "float8"])
