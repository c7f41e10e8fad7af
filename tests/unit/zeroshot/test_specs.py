"""Zero-shot specs: versioned templates and label descriptions, picked by dataset and strategy."""

from __future__ import annotations

import pytest

from tlnlp.registry import RegistryError
from tlnlp.zeroshot import SPECS, load_spec_file, resolve_spec, spec_for_dataset


def test_builtin_specs_have_versions_and_valid_templates():
    assert {"default", "sentiment", "trec6", "sms_spam", "bbc_news"} <= set(SPECS.names())
    for name in SPECS.names():
        spec = SPECS.get(name)
        assert spec.version and spec.templates
        assert all("{}" in t for t in spec.templates)
    assert SPECS.get("default").templates == ("This example is {}.",)  # the transformers pipeline's default


def test_auto_picks_the_spec_written_for_the_dataset_and_strategy():
    assert spec_for_dataset("bundled:trec6").name == "trec6"
    assert spec_for_dataset("bundled:bbc_news", "nli").name == "bbc_news"
    assert spec_for_dataset("bundled:bbc_news", "embedding").name == "bbc_news_embedding"
    assert spec_for_dataset("bundled:tweet_sentiment", "embedding").name == "sentiment_embedding"
    assert spec_for_dataset("someone/unknown", "nli").name == "default"
    spec = SPECS.get("trec6")
    assert spec.hypotheses(["LOC", "HUM"]) == [["This example is a location.", "This example is a person."]]
    assert spec.describe("unlisted") == "unlisted"


def test_user_spec_file_wins_and_custom_templates_mark_the_version(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("mine:\n  version: 2.1.0\n  templates: ['It is {}.']\n  label_descriptions: {pos: good}\n"
                    "  datasets: [bundled:movie_sentiment]\n")
    spec = resolve_spec("auto", "bundled:movie_sentiment", "nli", str(path))
    assert (spec.name, spec.version, spec.templates) == ("mine", "2.1.0", ("It is {}.",))
    custom = resolve_spec("sentiment", templates=["A {} review.", "{}"])
    assert custom.version == SPECS.get("sentiment").version + "+custom"
    assert custom.templates == ("A {} review.", "{}")
    assert custom.as_dict()["version"] == custom.version


@pytest.mark.parametrize("body, message", [
    ("x:\n  templates: ['{}']\n", "no version"),
    ("x:\n  version: 1\n  template: ['{}']\n", "unknown keys"),
    ("x:\n  version: 1\n  templates: ['no slot']\n", "slot"),
    ("x:\n  version: 1\n  strategy: magic\n", "strategy"),
    ("x:\n  version: 1\n  label_descriptions: [a, b]\n", "label_descriptions"),
    ("- a\n- b\n", "must map"),
])
def test_malformed_spec_files_name_the_problem(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ValueError, match=message):
        load_spec_file(path)


def test_unknown_spec_names_suggest_close_ones():
    with pytest.raises(RegistryError, match="sentiment"):
        resolve_spec("sentimnt")
    with pytest.raises(ValueError, match="not found"):
        load_spec_file("no/such/file.yaml")
