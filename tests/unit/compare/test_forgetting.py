import pytest
import torch

from tests.conftest import tiny_config
from tlnlp.compare.forgetting import ForgettingProbe, general_texts

TEXTS = [f"the {w} sat on the mat and looked at the {v} for a while" for w in ("cat", "dog", "bird", "man")
         for v in ("sun", "door", "sea")]


@pytest.mark.parametrize(("arch", "head_class", "measure"), [("bert", "BertForMaskedLM", "pseudo_perplexity"),
                                                              ("gpt2", "GPT2LMHeadModel", "perplexity")])
def test_pretrained_head_unchanged_backbone_scores_the_same(tmp_path, tokenizer, arch, head_class, measure):
    import transformers

    torch.manual_seed(0)
    lm = getattr(transformers, head_class)(tiny_config(arch))
    lm.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    probe = ForgettingProbe(str(tmp_path), tokenizer, TEXTS, samples=6, max_length=16)
    assert probe.measure_name == measure
    classifier = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2)
    same = probe.measure(classifier)
    assert probe.head == "pretrained"
    assert same["change_pct"] == 0.0 and same["before"] > 1
    with torch.no_grad():
        for param in classifier.base_model.parameters():
            param.add_(torch.randn_like(param) * 0.5)
    changed = probe.measure(classifier)
    assert changed["after"] != changed["before"]
    assert probe.measure(transformers.AutoModelForSequenceClassification.from_pretrained(
        tmp_path, num_labels=2))["change_pct"] == 0.0  # the probe's own backbone was restored


def test_general_texts_bundled_dialogue_and_file(tmp_path):
    texts = general_texts("bundled:movie_dialog")
    assert len(texts) > 10_000 and all(len(t.split()) >= 5 for t in texts[:100])
    assert texts[:5] == general_texts("bundled:movie_dialog")[:5]
    path = tmp_path / "t.txt"
    path.write_text("\n".join(TEXTS + ["too short", TEXTS[0]]))
    assert sorted(general_texts(str(path))) == sorted(TEXTS)
    with pytest.raises(ValueError, match="forgetting_text"):
        general_texts("bundled:nothing")


def _fitted_before(folder) -> float:
    from transformers import AutoTokenizer

    return ForgettingProbe(str(folder), AutoTokenizer.from_pretrained(folder), TEXTS, samples=4, max_length=16).before


def test_a_fitted_head_is_the_same_in_a_process_multiprocessing_started(tiny_bert_folder):
    """A ladder worker (--workers, Ray) fits the same MLM head as the main process (same masks, same score)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    here = _fitted_before(tiny_bert_folder)  # a classifier folder: no MLM head, so one is fitted
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        there = pool.submit(_fitted_before, tiny_bert_folder).result()
    assert there == here
