import pytest

from tlnlp.fewshot import SPECS, PromptSpecError, load_spec, resolve_spec, spec_for_dataset, spec_from_dict

BASE = {"version": "1.0.0", "template": "Text: {text}\nSentiment: {label}",
        "verbalizer": {"negative": "bad", "positive": ["good", "great"]}}


def make(**changes):
    raw = {**BASE, **changes}
    return spec_from_dict({k: v for k, v in raw.items() if v is not None}, "test.yaml")


def test_builtin_specs_load_with_versions_and_cover_their_datasets():
    from tlnlp.data import CORPORA

    assert {"sentiment", "trec6", "sms_spam", "bbc_news", "trec50"} <= set(SPECS.names())
    for name in SPECS.names():
        spec = SPECS.get(name)
        assert spec.version and spec.datasets and spec.fields == ["text"]
        for dataset in spec.datasets:
            preset = CORPORA.get(dataset.removeprefix("bundled:"))
            if preset.labels is not None:  # fixed label sets are checked here; trec/bbc in test_fits_bundled_data
                spec.check_fits(list(preset.labels), ["text", "label"])


@pytest.mark.parametrize("name", ["trec6", "bbc_news"])
def test_fits_bundled_data(name):
    from tlnlp.config import DataArgs
    from tlnlp.tasks import load_task_data

    data = load_task_data(DataArgs(dataset_name=f"bundled:{name}", max_train_samples=8, max_eval_samples=4,
                                   max_predict_samples=4))
    resolve_spec("auto", data.name).check_fits(data.labels, data.splits["test"].column_names)


def test_spec_fields_and_answer_gap():
    spec = make()
    assert spec.fields == ["text"]
    assert spec.query_template == "Text: {text}\nSentiment:"
    assert spec.answer_gap == " "
    assert spec.verbalizer == {"negative": ("bad",), "positive": ("good", "great")}
    assert spec.separator == "\n\n" and spec.instruction == "" and spec.chat is False


def test_missing_label_in_verbalizer_is_a_clear_error():
    with pytest.raises(PromptSpecError, match=r"no words for label\(s\) \['neutral'\].*neutral: <word>"):
        make().check_fits(["negative", "neutral", "positive"], ["text", "label"])


def test_verbalizer_label_not_in_data_is_an_error():
    with pytest.raises(PromptSpecError, match=r"\['positive'\] that the data does not have"):
        make(verbalizer={"negative": "bad", "positive": "good", "ham": "x"}).check_fits(
            ["ham", "negative"], ["text", "label"])


def test_field_missing_from_data_is_a_clear_error():
    spec = make(template="Premise: {text}\nHypothesis: {text_pair}\nAnswer: {label}")
    with pytest.raises(PromptSpecError, match=r"\{text_pair\} is not a column of the data.*--text_pair_column"):
        spec.check_fits(["negative", "positive"], ["text", "label"])


@pytest.mark.parametrize("template, message", [
    ("Review: {review}\nSentiment: {label}", r"field \{review\} is unknown"),
    ("Review: {txt}\nSentiment: {label}", r"Did you mean \{text\}"),
    ("Sentiment: {label}\nReview: {text}", "must end with {label}"),
    ("Review: {text}", "must end with {label}"),
    ("Sentiment: {label}", "has no data field"),
    ("Review: {text}\nSentiment: {label} ", "text after {label}"),
    ("Review: {text\nSentiment: {label}", "cannot be parsed"),
])
def test_bad_templates(template, message):
    with pytest.raises(PromptSpecError, match=message):
        make(template=template)


def test_bad_keys_and_values():
    with pytest.raises(PromptSpecError, match="unknown key 'verbaliser'. Did you mean 'verbalizer'"):
        spec_from_dict({**BASE, "verbaliser": {}}, "x.yaml")
    with pytest.raises(PromptSpecError, match="missing required key 'version'"):
        spec_from_dict({k: v for k, v in BASE.items() if k != "version"}, "x.yaml")
    with pytest.raises(PromptSpecError, match="'good' stands for both"):
        make(verbalizer={"negative": "good", "positive": "good"})
    with pytest.raises(PromptSpecError, match="must be a non-empty word"):
        make(verbalizer={"negative": [], "positive": "good"})
    with pytest.raises(PromptSpecError, match="max_field_chars=0"):
        make(max_field_chars=0)
    with pytest.raises(PromptSpecError, match="chat='yes'"):
        make(chat="yes")


def test_user_file_and_resolution(tmp_path):
    path = tmp_path / "my_prompt.yaml"
    path.write_text("version: 2.1.0\ntemplate: \"Q: {text}\\nA: {label}\"\nverbalizer: {a: alpha, b: beta}\n")
    spec = resolve_spec(str(path))
    assert (spec.name, spec.version, spec.template) == ("my_prompt", "2.1.0", "Q: {text}\nA: {label}")
    assert spec == load_spec(path)
    assert resolve_spec("auto", "bundled:movie_sentiment").name == "sentiment"
    assert resolve_spec("trec6").name == "trec6"
    assert spec_for_dataset("someone/else") is None
    with pytest.raises(PromptSpecError, match="No built-in prompt spec for dataset 'someone/else'"):
        resolve_spec("auto", "someone/else")
    with pytest.raises(PromptSpecError, match="Did you mean 'sentiment'"):
        resolve_spec("sentimnt")
    with pytest.raises(PromptSpecError, match="does not exist"):
        resolve_spec(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [1\n")
    with pytest.raises(PromptSpecError, match="not valid YAML"):
        load_spec(bad)
