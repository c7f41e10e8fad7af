import dataclasses

import datasets
import numpy as np
import pytest

from tlnlp.fewshot import FewShotOptions, PromptSpecError, evaluate_few_shot, spec_from_dict
from tlnlp.fewshot.report import report_extras

LABELS = ["negative", "positive"]
SPEC = spec_from_dict({"version": "3.1", "template": "Text: {text}\nSentiment: {label}",
                       "verbalizer": {"negative": ["negative", "dull film"], "positive": "positive"}}, "test")


def table(n, offset=0):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=LABELS)})
    texts = [f"a {'warm' if i % 2 else 'dull'} film number {i + offset}" for i in range(n)]
    return datasets.Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(n)]}, features=features)


def test_runs_over_seeds_and_orders_with_summary(tiny_lm, bpe_tokenizer):
    report = evaluate_few_shot(tiny_lm("llama"), bpe_tokenizer, SPEC, table(20), table(9, 100),
                               FewShotOptions(shots=2, seeds=[0, 1], orders=2, show_progress=False))
    assert [(r.seed, r.order) for r in report.runs] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert report.labels == LABELS and report.primary == "sum_calibrated"
    assert set(report.variants) == {"sum_raw", "sum_calibrated", "mean_raw", "mean_calibrated"}
    for run in report.runs:
        assert len(run.demonstrations) == 4 and run.prefix_tokens > 0
        for probs in run.probabilities.values():
            assert probs.shape == (9, 2)
            np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert sorted(report.runs[0].demonstrations) == sorted(report.runs[1].demonstrations)
    accuracies = [r.metrics["sum_raw"]["accuracy"] for r in report.runs]
    stats = report.summary()["sum_raw"]["accuracy"]
    assert stats["mean"] == pytest.approx(np.mean(accuracies))
    assert stats["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert (stats["min"], stats["max"], stats["runs"]) == (min(accuracies), max(accuracies), 4)
    np.testing.assert_allclose(report.probabilities(),
                               np.mean([r.probabilities["sum_calibrated"] for r in report.runs], axis=0))
    extras, sections, description = report_extras(report, "test", 1.5)
    assert extras["prompt_spec_version"] == "3.1" and extras["few_shot"]["runs"][3]["order"] == 1
    assert extras["test_calibrated_accuracy_std"] == pytest.approx(
        report.summary()["sum_calibrated"]["accuracy"]["std"], abs=1e-6)
    assert "4 prompt(s)" in description and "| seed | order |" in sections["Runs"]


def test_shared_prefix_and_naive_give_the_same_probabilities(tiny_lm, bpe_tokenizer):
    model = tiny_lm("gpt2")
    kwargs = dict(shots=1, seeds=[3], show_progress=False, normalization="mean", calibrate=False)
    shared = evaluate_few_shot(model, bpe_tokenizer, SPEC, table(10), table(6, 50), FewShotOptions(**kwargs))
    naive = evaluate_few_shot(model, bpe_tokenizer, SPEC, table(10), table(6, 50),
                              FewShotOptions(shared_prefix=False, **kwargs))
    assert shared.primary == "mean_raw"
    for variant in shared.variants:
        np.testing.assert_allclose(shared.runs[0].probabilities[variant], naive.runs[0].probabilities[variant],
                                   atol=1e-5)


def test_zero_shot_is_one_run_and_calibration_uses_content_free_inputs(tiny_lm, bpe_tokenizer):
    report = evaluate_few_shot(tiny_lm("llama"), bpe_tokenizer, SPEC, table(10), table(5),
                               FewShotOptions(shots=0, seeds=[0, 1, 2], orders=3, content_free=["N/A"],
                                              show_progress=False))
    assert len(report.runs) == 1 and report.runs[0].demonstrations == []
    run = report.runs[0]
    cf = np.array(run.content_free["sum"])
    expected = run.probabilities["sum_raw"] / cf
    np.testing.assert_allclose(run.probabilities["sum_calibrated"], expected / expected.sum(axis=1, keepdims=True))


def test_spec_that_does_not_fit_and_multi_label_data_fail_clearly(tiny_lm, bpe_tokenizer):
    one_shot = FewShotOptions(shots=1, show_progress=False)
    other = spec_from_dict({"version": "1", "template": "{text} => {label}", "verbalizer": {"ham": "no",
                                                                                          "spam": "yes"}}, "sms")
    with pytest.raises(PromptSpecError, match=r"no words for label\(s\) \['negative', 'positive'\]"):
        evaluate_few_shot(tiny_lm("llama"), bpe_tokenizer, other, table(4), table(4), one_shot)
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.List(datasets.ClassLabel(names=LABELS))})
    multi = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [[0], [0, 1]]}, features=features)
    with pytest.raises(PromptSpecError, match="multi-label data is not supported"):
        evaluate_few_shot(tiny_lm("llama"), bpe_tokenizer, SPEC, multi, multi, one_shot)
    with pytest.raises(ValueError, match="calibrate=True needs"):
        evaluate_few_shot(tiny_lm("llama"), bpe_tokenizer, SPEC, table(4), table(4),
                          FewShotOptions(shots=1, content_free=[], show_progress=False))


def test_stored_runs_are_reused_only_with_the_same_settings(tiny_lm, bpe_tokenizer, tmp_path, monkeypatch):
    import tlnlp.fewshot.evaluate as evaluate_mod

    model = tiny_lm("llama")
    options = FewShotOptions(shots=1, seeds=[0, 1], show_progress=False)
    first = evaluate_few_shot(model, bpe_tokenizer, SPEC, table(10), table(5), options, run_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_seed0_order0.json", "run_seed1_order0.json"]

    def fail(*args, **kwargs):
        raise AssertionError("a stored run should have been reused")

    monkeypatch.setattr(evaluate_mod, "_one_run", fail)
    again = evaluate_few_shot(model, bpe_tokenizer, SPEC, table(10), table(5), options, run_dir=tmp_path)
    assert [r.metrics for r in again.runs] == [r.metrics for r in first.runs]
    np.testing.assert_allclose(again.probabilities(), first.probabilities())
    with pytest.raises(AssertionError, match="should have been reused"):  # other settings: scored again
        evaluate_few_shot(model, bpe_tokenizer, SPEC, table(10), table(5),
                          dataclasses.replace(options, content_free=["N/A"]), run_dir=tmp_path)
