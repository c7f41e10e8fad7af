"""resolve_model_path offline behaviour and load_classifier on the bundled MiniLM and tiny decoders."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from tests.conftest import tiny_config
from tlnlp.assets import AssetError
from tlnlp.config import ModelArgs
from tlnlp.models import HubUnreachableError, load_classifier, resolve_model_path
from tlnlp.models import loading as loading_module

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
SENTENCES = ["the movie was great", "a dull and boring film", "great acting, great story",
             "boring plot and weak acting", "the film was a delight"]


@pytest.fixture
def offline(monkeypatch):
    """The Hub is unreachable: HF_HUB_OFFLINE=1, and any network check would fail."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _decoder_tokenizer():
    """A byte-level BPE tokenizer trained on a few sentences, with EOS but no pad token (like GPT-2's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    eos = "<|endoftext|>"
    bpe.train_from_iterator(SENTENCES * 4, trainers.BpeTrainer(vocab_size=300, special_tokens=[eos]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=eos, bos_token=eos)
    assert tokenizer.pad_token is None
    return tokenizer


# ----------------------------------------------------------------------------- resolve_model_path


def test_resolve_bundled_minilm(bundled_minilm_dir):
    assert Path(resolve_model_path("bundled:minilm")) == bundled_minilm_dir


def test_resolve_local_folder(tmp_path):
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)


def test_resolve_missing_local_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="bundled:minilm"):
        resolve_model_path(str(tmp_path / "runs" / "nothing"))


def test_hub_id_of_bundled_model_offline_resolves_to_bundled(offline, bundled_minilm_dir, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="tlnlp.models.loading"):
        path = resolve_model_path(MINILM_HUB_ID, cache_dir=str(tmp_path))
    assert Path(path) == bundled_minilm_dir
    assert any("bundled:minilm" in r.getMessage() and "unreachable" in r.getMessage() for r in caplog.records)


def test_unknown_hub_id_offline_fails_with_bundled_alternatives(offline, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("huggingface_hub.get_session", lambda: calls.append(1))  # must not even try
    with pytest.raises(HubUnreachableError) as info:
        resolve_model_path("someone/some-model", cache_dir=str(tmp_path))
    message = str(info.value)
    assert "unreachable" in message and "bundled:minilm" in message and "bundled:smollm2" in message
    assert "all-MiniLM-L6-v2" in message  # descriptions listed
    assert calls == []


def test_unreachable_hub_without_offline_flag(monkeypatch, tmp_path):
    from huggingface_hub import constants

    class FailingSession:
        def head(self, url, timeout):
            assert timeout <= 5
            raise ConnectionError("no route to host")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.get_session", lambda: FailingSession())
    assert loading_module.is_hub_reachable() is False
    with pytest.raises(HubUnreachableError):
        resolve_model_path("someone/some-model", cache_dir=str(tmp_path))


def test_hub_id_unchanged_when_reachable(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(loading_module, "is_hub_reachable", lambda timeout=3.0: True)
    assert resolve_model_path(MINILM_HUB_ID, cache_dir=str(tmp_path)) == MINILM_HUB_ID
    assert resolve_model_path("someone/some-model", cache_dir=str(tmp_path)) == "someone/some-model"


def test_hub_id_unchanged_when_cached(offline, tmp_path):
    repo = tmp_path / "models--someone--cached-model"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    assert resolve_model_path("someone/cached-model", cache_dir=str(tmp_path)) == "someone/cached-model"


def test_unknown_bundled_name_lists_names():
    with pytest.raises(AssetError, match="bundled:minilm"):
        resolve_model_path("bundled:nope")
    with pytest.raises(AssetError, match="Did you mean bundled:minilm"):
        resolve_model_path("bundled:minlm")


# ----------------------------------------------------------------------------- load_classifier


def test_load_bundled_minilm_keeps_label_names(tmp_path, caplog):
    labels = ["negative", "positive"]
    with caplog.at_level(logging.INFO, logger="tlnlp.models.loading"):
        model, tokenizer = load_classifier(ModelArgs(model_name_or_path="bundled:minilm"), labels)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert model.config.label2id == {"negative": 0, "positive": 1}
    assert model.config.problem_type == "single_label_classification"
    assert tokenizer.pad_token == "[PAD]"
    new_head = [r.getMessage() for r in caplog.records if "Newly initialised" in r.getMessage()]
    assert len(new_head) == 1 and "classifier.weight" in new_head[0]

    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not (tmp_path / "pytorch_model.bin").exists()
    reloaded, _ = load_classifier(ModelArgs(model_name_or_path=str(tmp_path)), labels)
    assert reloaded.config.id2label == {0: "negative", 1: "positive"}
    assert torch.equal(reloaded.classifier.weight, model.classifier.weight)  # the trained head is kept


def test_load_multi_label_sets_problem_type():
    model, _ = load_classifier(ModelArgs(), ["sports", "politics", "tech"], multi_label=True)
    assert model.config.problem_type == "multi_label_classification"
    assert model.config.num_labels == 3


@pytest.mark.parametrize("labels", [[], ["a", "a"], ["only"], ["", "b"]])
def test_bad_labels_are_refused(labels):
    with pytest.raises(ValueError, match="labels"):
        load_classifier(ModelArgs(), labels)


def test_checkpoint_with_other_head_is_reinitialised(tmp_path, tiny_classifier, tokenizer, caplog):
    old = tiny_classifier("bert", num_labels=3)
    old.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tlnlp.models.loading"):
        model, _ = load_classifier(ModelArgs(model_name_or_path=str(tmp_path)), ["no", "yes"])
    assert model.classifier.weight.shape == (2, 32)
    backbone = model.bert.encoder.layer[0].output.dense.weight
    assert torch.equal(backbone, old.bert.encoder.layer[0].output.dense.weight)
    assert any("re-initialised" in r.getMessage() for r in caplog.records)


def test_pickle_only_checkpoint_is_refused(tmp_path, tiny_classifier, tokenizer):
    model = tiny_classifier("bert")
    model.config.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="safetensors"):
        load_classifier(ModelArgs(model_name_or_path=str(tmp_path)), ["a", "b"])


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_decoder_gets_pad_token(tmp_path, arch):
    tokenizer = _decoder_tokenizer()
    eos = tokenizer.eos_token_id
    config = tiny_config(arch, vocab_size=len(tokenizer), pad_token_id=None,
                         bos_token_id=eos, eos_token_id=eos)
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    model, loaded = load_classifier(ModelArgs(model_name_or_path=str(tmp_path)), ["negative", "positive"])
    assert loaded.pad_token == "<|endoftext|>"
    assert model.config.pad_token_id == loaded.pad_token_id == eos
    batch = loaded(SENTENCES[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, 2)


def test_same_size_head_with_other_names_is_kept_with_warning(tmp_path, tiny_classifier, tokenizer, caplog):
    old = tiny_classifier("bert", id2label={0: "cat", 1: "dog"}, label2id={"cat": 0, "dog": 1})
    old.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tlnlp.models.loading"):
        model, _ = load_classifier(ModelArgs(model_name_or_path=str(tmp_path)), ["negative", "positive"])
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert torch.equal(model.classifier.weight, old.classifier.weight)
    assert any("['cat', 'dog']" in r.getMessage() for r in caplog.records)


def test_init_from_scratch_keeps_architecture_and_labels(bundled_minilm_dir):
    import torch

    from tlnlp.config import ModelArgs
    from tlnlp.models import load_classifier

    pretrained, _ = load_classifier(ModelArgs(model_name_or_path="bundled:minilm"), labels=["neg", "pos"])
    torch.manual_seed(0)
    scratch, tokenizer = load_classifier(ModelArgs(model_name_or_path="bundled:minilm", init_from_scratch=True),
                                         labels=["neg", "pos"])
    assert type(scratch) is type(pretrained) and scratch.config.id2label == {0: "neg", 1: "pos"}
    a, b = dict(pretrained.named_parameters()), dict(scratch.named_parameters())
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(a[name], b[name])  # random, not the pretrained weights
    assert tokenizer("hello")["input_ids"]
