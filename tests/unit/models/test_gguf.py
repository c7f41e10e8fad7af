import json

import pytest
import torch

from tlnlp.models import gguf as gguf_mod
from tlnlp.models.gguf import CONVERSION_MARKER, cache_root, convert_gguf, converted_gguf_dir, gguf_sha256


@pytest.fixture
def fake_gguf(tmp_path):
    path = tmp_path / "src" / "model.Q4_0.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF not really")
    return path


def _fake_convert(calls):
    def convert(source, folder, sha256):
        calls.append((source, sha256))
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"weights")
        (folder / CONVERSION_MARKER).write_text(json.dumps({"source_sha256": sha256}))

    return convert


def test_cache_root_env_override_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("TLNLP_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("TLNLP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "tlnlp"


def test_converts_once_keyed_by_sha256(monkeypatch, tmp_path, fake_gguf):
    calls = []
    monkeypatch.setattr(gguf_mod, "_convert_into", _fake_convert(calls))
    monkeypatch.setenv("TLNLP_CACHE_DIR", str(tmp_path / "cache"))
    first = convert_gguf(fake_gguf)
    sha = gguf_sha256(fake_gguf)
    assert first == converted_gguf_dir(sha) == tmp_path / "cache" / "gguf" / sha
    assert convert_gguf(fake_gguf) == first
    assert len(calls) == 1 and calls[0][1] == sha
    assert sorted(p.name for p in first.parent.iterdir()) == [sha]  # no temporary folder left behind


def test_interrupted_conversion_leaves_nothing(monkeypatch, tmp_path, fake_gguf):
    def interrupted(source, folder, sha256):
        (folder / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf_mod, "_convert_into", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert_gguf(fake_gguf, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache" / "gguf").iterdir()) == []
    calls = []
    monkeypatch.setattr(gguf_mod, "_convert_into", _fake_convert(calls))
    assert (convert_gguf(fake_gguf, cache_dir=tmp_path / "cache") / "model.safetensors").is_file()
    assert len(calls) == 1


def test_incomplete_folder_is_converted_again(monkeypatch, tmp_path, fake_gguf):
    sha = gguf_sha256(fake_gguf)
    stale = converted_gguf_dir(sha, tmp_path)
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")  # no weights, no marker
    calls = []
    monkeypatch.setattr(gguf_mod, "_convert_into", _fake_convert(calls))
    assert convert_gguf(fake_gguf, cache_dir=tmp_path, sha256=sha) == stale
    assert len(calls) == 1 and (stale / CONVERSION_MARKER).is_file()


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert_gguf(tmp_path / "nope.gguf")


def test_bundled_smollm2_resolves_to_its_conversion(monkeypatch, tmp_path):
    from tlnlp.assets import BUNDLED_MODELS
    from tlnlp.models import resolve_model_path

    seen = {}

    def fake(path, sha256=None, cache_dir=None):
        seen.update(path=path, sha256=sha256)
        return tmp_path

    monkeypatch.setattr(gguf_mod, "convert_gguf", fake)
    assert resolve_model_path("bundled:smollm2") == str(tmp_path)
    assert seen["path"].name == BUNDLED_MODELS["smollm2"].extra["gguf_file"] and seen["path"].is_file()
    assert seen["sha256"] == BUNDLED_MODELS["smollm2"].files[0].sha256


def test_local_gguf_file_resolves_to_its_conversion(monkeypatch, tmp_path, fake_gguf):
    from tlnlp.models import resolve_model_path

    monkeypatch.setattr(gguf_mod, "convert_gguf", lambda path: tmp_path / "converted")
    assert resolve_model_path(str(fake_gguf)) == str(tmp_path / "converted")


@pytest.mark.slow
def test_bundled_smollm2_conversion_matches_gguf_logits(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tlnlp.assets import BUNDLED_MODELS, AssetError, bundled_model_path

    try:
        folder = bundled_model_path("smollm2")
    except AssetError as err:  # pragma: no cover - assets are installed by `make test`
        pytest.skip(str(err))
    name = BUNDLED_MODELS["smollm2"].extra["gguf_file"]
    converted = convert_gguf(folder / name, cache_dir=tmp_path)
    assert converted == tmp_path / "gguf" / BUNDLED_MODELS["smollm2"].files[0].sha256
    assert json.loads((converted / CONVERSION_MARKER).read_text())["source_file"] == name
    assert "quantization_config" not in json.loads((converted / "config.json").read_text())

    def no_conversion(*args):
        raise AssertionError("the cached folder should have been reused")

    monkeypatch.setattr(gguf_mod, "_convert_into", no_conversion)
    assert convert_gguf(folder / name, cache_dir=tmp_path) == converted

    plain = AutoModelForCausalLM.from_pretrained(converted).eval()
    tokenizer = AutoTokenizer.from_pretrained(converted)
    reference = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    reference_tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    text = ["Review: a warm, funny film.\nSentiment:", "What city hosts the Louvre?"]
    assert tokenizer(text)["input_ids"] == reference_tokenizer(text)["input_ids"]
    assert tokenizer.chat_template == reference_tokenizer.chat_template
    batch = tokenizer(text[0], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(plain(**batch).logits, reference(**batch).logits, rtol=0, atol=1e-4)
