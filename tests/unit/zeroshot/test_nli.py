"""NLI zero-shot scores equal the transformers pipeline's, for 2- and 3-way heads, single- and multi-label."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import pipeline

from tests.unit.zeroshot.conftest import HEADS, LABELS, TEXTS, make_nli_model
from tlnlp.zeroshot import (
    DEFAULT_TEMPLATE,
    ScoringOptions,
    ZeroShotError,
    entailment_id,
    load_nli_model,
    score_nli,
)
from tlnlp.zeroshot.nli import contradiction_id


def pipeline_scores(pipe, texts, labels, **kwargs) -> np.ndarray:
    """The pipeline's scores, put back into the order of ``labels``."""
    out = pipe(list(texts), candidate_labels=list(labels), **kwargs)
    out = [out] if isinstance(out, dict) else out
    return np.array([[row["scores"][row["labels"].index(label)] for label in labels] for row in out])


@pytest.fixture(scope="module")
def pipes(nli_dir):
    return {head: pipeline("zero-shot-classification", model=str(nli_dir(head))) for head in HEADS}


@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("template", [DEFAULT_TEMPLATE, "Topic: {}"])
def test_scores_equal_the_transformers_pipeline(pipes, head, multi_label, template):
    pipe = pipes[head]
    expected = pipeline_scores(pipe, TEXTS, LABELS, multi_label=multi_label, hypothesis_template=template)
    got = score_nli(pipe.model, pipe.tokenizer, TEXTS, LABELS, hypothesis_template=template,
                    options=ScoringOptions(multi_label=multi_label, batch_size=3))
    assert got.shape == (len(TEXTS), len(LABELS))
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert expected.std() > 0.01  # the scores really differ between texts and labels, so the check has teeth
    if not multi_label:
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-9)


def test_one_label_is_scored_against_contradiction_as_the_pipeline_does(pipes):
    pipe = pipes["3way"]
    expected = pipeline_scores(pipe, TEXTS, ["business"])
    got = score_nli(pipe.model, pipe.tokenizer, TEXTS, ["business"])
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert (got < 0.999).all()  # not a trivial softmax over one label


def test_label_descriptions_replace_the_name_in_the_hypothesis(pipes):
    pipe = pipes["2way"]
    descriptions = {"positive": "a glowing review", "business": "about money and companies"}
    expected = pipeline_scores(pipe, TEXTS, [descriptions.get(label, label) for label in LABELS])
    got = score_nli(pipe.model, pipe.tokenizer, TEXTS, LABELS, label_descriptions=descriptions)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_several_templates_are_averaged(pipes):
    pipe = pipes["3way"]
    templates = ["This example is {}.", "This text is about {}.", "{}"]
    for multi_label in (False, True):
        options = ScoringOptions(multi_label=multi_label)
        each = [score_nli(pipe.model, pipe.tokenizer, TEXTS, LABELS, hypothesis_template=t, options=options)
                for t in templates]
        together = score_nli(pipe.model, pipe.tokenizer, TEXTS, LABELS, hypothesis_template=templates,
                             options=options)
        np.testing.assert_allclose(together, np.mean(each, axis=0), atol=1e-6)  # batches differ
        assert np.abs(each[0] - each[1]).max() > 1e-3  # the templates do give different scores


def test_entailment_and_contradiction_ids_follow_the_config():
    for head, expected in (("3way", 2), ("3way_entailment_first", 0), ("2way", 0)):
        config = make_nli_model(head).config
        assert entailment_id(config) == expected
    assert contradiction_id(2, 3) == 0 and contradiction_id(0, 3) == 2 and contradiction_id(0, 2) == 1


def test_a_config_without_an_entailment_class_is_refused_with_the_fix(tokenizer):
    from transformers import AutoModelForSequenceClassification

    from tests.conftest import tiny_config

    model = AutoModelForSequenceClassification.from_config(tiny_config("bert", num_labels=3))
    with pytest.raises(ZeroShotError, match="names no entailment class.*id2label"):
        score_nli(model, tokenizer, TEXTS, LABELS)
    # the class id can be given instead; scores then equal those of the same weights with a named class
    named = make_nli_model("3way")
    model.load_state_dict(named.state_dict())
    np.testing.assert_allclose(score_nli(model, tokenizer, TEXTS, LABELS, options=ScoringOptions(entailment_index=2)),
                               score_nli(named, tokenizer, TEXTS, LABELS), atol=1e-9)
    with pytest.raises(ValueError, match="outside"):
        score_nli(model, tokenizer, TEXTS, LABELS, options=ScoringOptions(entailment_index=5))


@pytest.mark.parametrize("template", ["This example is positive.", "About {label}.", ""])
def test_a_template_without_a_slot_is_refused(tokenizer, template):
    with pytest.raises(ValueError, match="hypothesis_template"):
        score_nli(make_nli_model(), tokenizer, TEXTS, LABELS, hypothesis_template=template)


def test_no_texts_or_labels_is_refused(tokenizer):
    with pytest.raises(ValueError, match="at least one text"):
        score_nli(make_nli_model(), tokenizer, [], LABELS)
    with pytest.raises(ValueError, match="at least one text"):
        score_nli(make_nli_model(), tokenizer, TEXTS, [])


def test_pairs_run_length_sorted_with_dynamic_padding_and_linear_cost(tokenizer):
    model = make_nli_model()
    shapes = []
    handle = model.register_forward_hook(lambda mod, args, kwargs, out: shapes.append(tuple(kwargs["input_ids"].shape)),
                                         with_kwargs=True)
    try:
        for num_labels in (2, 4):
            shapes.clear()
            score_nli(model, tokenizer, TEXTS, LABELS[:num_labels], options=ScoringOptions(batch_size=4))
            pairs = len(TEXTS) * num_labels
            assert len(shapes) == -(-pairs // 4)  # one forward pass per batch of pairs: cost linear in labels
            assert sum(rows for rows, _ in shapes) == pairs
            widths = [width for _, width in shapes]
            assert widths == sorted(widths, reverse=True)  # longest first
            assert widths[-1] < widths[0]  # each batch padded to its own longest pair, not to the longest overall
    finally:
        handle.remove()


def test_batch_size_does_not_change_scores_and_model_mode_is_restored(tokenizer):
    model = make_nli_model()
    model.train()
    one = score_nli(model, tokenizer, TEXTS, LABELS, options=ScoringOptions(batch_size=1))
    many = score_nli(model, tokenizer, TEXTS, LABELS, options=ScoringOptions(batch_size=64))
    np.testing.assert_allclose(one, many, atol=1e-5, rtol=0)
    assert model.training  # scoring ran in eval mode and put the model back as it was
    assert torch.is_grad_enabled()


def test_max_length_truncates_the_text_only(tokenizer):
    model = make_nli_model()
    shapes = []
    handle = model.register_forward_hook(lambda mod, args, kwargs, out: shapes.append(kwargs["input_ids"].shape[1]),
                                         with_kwargs=True)
    score_nli(model, tokenizer, TEXTS, ["a question about people"], options=ScoringOptions(max_length=16))
    handle.remove()
    assert max(shapes) == 16
    # a hypothesis longer than max_length cannot keep the text only: it is truncated longest-first, not an error
    long_label = "a very long description of a label that takes up far more than sixteen tokens by itself alone"
    short = ScoringOptions(max_length=16)
    assert score_nli(model, tokenizer, TEXTS[:2], [long_label, "x"], options=short).shape == (2, 2)


def test_load_nli_model_reads_a_folder_and_checks_the_head(nli_dir, tiny_bert_dir_plain):
    model, tokenizer = load_nli_model(str(nli_dir("2way")), device="cpu")
    assert entailment_id(model.config) == 0 and not model.training
    with pytest.raises(ZeroShotError, match="entailment"):
        load_nli_model(str(tiny_bert_dir_plain), device="cpu")


@pytest.fixture(scope="module")
def tiny_bert_dir_plain(tmp_path_factory, tokenizer):
    from transformers import AutoModelForSequenceClassification

    from tests.conftest import tiny_config

    folder = tmp_path_factory.mktemp("plain")
    AutoModelForSequenceClassification.from_config(tiny_config("bert")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
