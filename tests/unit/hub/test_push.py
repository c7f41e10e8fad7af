"""Pushing runs through huggingface_hub to the stand-in Hub, then loading them back by repo id."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from huggingface_hub import ModelCard

from tests.conftest import tiny_config
from tests.hub_server import PLANTED_TOKEN
from tlnlp.hub import CardSpec, HubTokenError, build_model_card, push_run, require_token

LABELS = ["negative", "positive"]
TEXTS = ["a wonderful, moving film", "dull and far too long", "fine"]


def _tiny_classifier(seed: int = 0):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    cfg = tiny_config("bert", num_labels=2, id2label=dict(enumerate(LABELS)),
                      label2id={label: i for i, label in enumerate(LABELS)})
    return AutoModelForSequenceClassification.from_config(cfg).eval()


def _card(base_model: str = "bundled:minilm", method: str = "full"):
    return build_model_card(CardSpec(
        model_name="tiny-run", base_model=base_model, task="text-classification", labels=LABELS, method=method,
        method_description="Every weight is trained.", dataset_name="bundled:movie_sentiment",
        dataset_description=None, dataset_license="CC BY 4.0", hub_dataset_id=None,
        metrics={"test_accuracy": 0.75, "test_f1_macro": 0.7, "eval_accuracy": 0.8},
        hyperparameters={"learning_rate": 1e-3}, command="accelerate launch recipes/classification.py --seed 1"))


@pytest.fixture
def run_dir(tmp_path, tokenizer):
    """A finished run's folder: model, tokenizer, card, run config, plus files that must not be pushed."""
    out = tmp_path / "tiny-run"
    _tiny_classifier().save_pretrained(out)
    tokenizer.save_pretrained(out)
    _card().save(out / "README.md")
    (out / "run_config.yaml").write_text(yaml.safe_dump({"model_name_or_path": "bundled:minilm"}))
    (out / "checkpoint-4").mkdir()
    (out / "checkpoint-4" / "model.safetensors").write_bytes(b"old")
    (out / "training_args.bin").write_bytes(b"pickle")
    (out / "all_results.json.tmp").write_text("{}")
    return out


def _logits(model, tokenizer):
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


def test_push_model_and_load_it_back_by_repo_id(local_hub, run_dir, tokenizer):
    from transformers import AutoModelForSequenceClassification

    import tlnlp

    result = push_run(run_dir, "tiny-run")
    assert result.repo_id == "tlnlp-tester/tiny-run" and not result.adapter
    files = local_hub.files(result.repo_id)
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json", "run_config.yaml"} <= set(files)
    assert not any(p.startswith("checkpoint-") or p.endswith((".bin", ".tmp")) for p in files), sorted(files)

    local = AutoModelForSequenceClassification.from_pretrained(run_dir).eval()
    remote = AutoModelForSequenceClassification.from_pretrained(result.repo_id).eval()
    assert torch.equal(_logits(local, tokenizer), _logits(remote, tokenizer))
    assert remote.config.id2label == {0: "negative", 1: "positive"}
    from_hub = tlnlp.load_pipeline(result.repo_id, device="cpu")(TEXTS, top_k=None)
    from_disk = tlnlp.load_pipeline(run_dir, device="cpu")(TEXTS, top_k=None)
    assert from_hub == from_disk


def test_push_goes_through_huggingface_hub(local_hub, run_dir):
    push_run(run_dir, "tiny-run")
    calls = [(r["method"], r["path"].split("/tiny-run")[-1] or r["path"]) for r in local_hub.requests
             if "tlnlp/" in r["user_agent"]]
    assert ("POST", "/api/repos/create") in calls
    assert ("POST", "/preupload/main") in calls and ("POST", "/commit/main") in calls
    assert all("hf_hub/" in r["user_agent"] for r in local_hub.requests if "tlnlp/" in r["user_agent"])
    assert all(r["authorized"] for r in local_hub.requests if r["method"] == "POST" and "repos" in r["path"])


def test_pushed_card_validates_and_names_the_repo(local_hub, run_dir):
    local_card = (run_dir / "README.md").read_text()
    result = push_run(run_dir, "tiny-run")
    text = local_hub.files(result.repo_id)["README.md"].decode()
    card = ModelCard(text)
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.pipeline_tag == "text-classification" and card.data.license == "apache-2.0"  # from the base
    assert {r.metric_type for r in card.data.eval_results} == {"accuracy", "f1"}
    assert 'tlnlp.load_pipeline("tlnlp-tester/tiny-run")' in text
    assert text.index("## Use this model") < text.index("## Limitations")
    assert (run_dir / "README.md").read_text() == local_card  # the local card is left as it was


def test_second_push_updates_and_removes_stale_pickles(local_hub, run_dir):
    from huggingface_hub import HfApi, constants

    api = HfApi(endpoint=constants.ENDPOINT, token=PLANTED_TOKEN)
    api.create_repo("tiny-run")
    api.upload_file(path_or_fileobj=b"pickled args", path_in_repo="training_args.bin",
                    repo_id="tlnlp-tester/tiny-run")  # as the Trainer's own intermediate pushes leave it
    push_run(run_dir, "tlnlp-tester/tiny-run", commit_message="final")
    files = local_hub.files("tlnlp-tester/tiny-run")
    assert "training_args.bin" not in files and "model.safetensors" in files
    assert local_hub.commit_messages("tlnlp-tester/tiny-run")[-1] == "final"


def test_private_repo_is_hidden_from_anonymous_readers(local_hub, run_dir, monkeypatch, tmp_path):
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RepositoryNotFoundError

    result = push_run(run_dir, "secret-run", private=True)
    assert local_hub.repos[result.repo_id].private
    assert hf_hub_download(result.repo_id, "config.json")  # with the token
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(result.repo_id, "config.json", cache_dir=tmp_path / "anonymous-cache")


def test_no_token_is_refused_with_a_clear_message(local_hub, run_dir, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubTokenError, match="HF_TOKEN.*hf auth login"):
        push_run(run_dir, "tiny-run")
    assert not local_hub.repos


def test_saved_login_is_used(local_hub, run_dir, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN")
    saved = tmp_path / "login" / "token"
    saved.parent.mkdir()
    saved.write_text(PLANTED_TOKEN)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(saved))
    assert require_token() == PLANTED_TOKEN
    assert push_run(run_dir, "tiny-run").repo_id == "tlnlp-tester/tiny-run"


def test_a_file_holding_the_token_is_never_uploaded(local_hub, run_dir):
    (run_dir / "notes.txt").write_text(f"token={PLANTED_TOKEN}")
    with pytest.raises(HubTokenError, match="notes.txt"):
        push_run(run_dir, "tiny-run")
    assert not local_hub.repos


def test_folder_without_a_model_is_refused(local_hub, tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model"):
        push_run(tmp_path, "nothing")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        push_run(tmp_path / "missing", "nothing")


def _push_base_model(tmp_path) -> str:
    """A tiny BERT base pushed to the stand-in Hub, as a public base model would be."""
    base_dir = tmp_path / "base"
    _tiny_classifier(seed=1).save_pretrained(base_dir)
    return push_run(base_dir, "tiny-bert-base").repo_id


def _adapter_dir(tmp_path, tokenizer):
    """LoRA on a base loaded from a local folder (transformers #33922), head in modules_to_save."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    base_dir = tmp_path / "base"
    base = AutoModelForSequenceClassification.from_pretrained(base_dir)
    torch.manual_seed(2)
    model = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"],
                                            modules_to_save=["classifier"], init_lora_weights=False)).eval()
    out = tmp_path / "adapter-run"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _card(base_model=str(base_dir), method="lora").save(out / "README.md")
    (out / "run_config.yaml").write_text(yaml.safe_dump({"model_name_or_path": str(base_dir)}))
    return model, out


def test_adapter_pushed_as_adapter_repo_and_loaded_back(local_hub, tmp_path, tokenizer):
    from peft import AutoPeftModelForSequenceClassification

    base_id = _push_base_model(tmp_path)
    model, out = _adapter_dir(tmp_path, tokenizer)
    with pytest.raises(ValueError, match="--base_model"):
        push_run(out, "tiny-lora")  # the base is only a local folder: nobody could load the adapter
    result = push_run(out, "tiny-lora", base_model=base_id)
    assert result.adapter and result.base_model == base_id
    files = local_hub.files(result.repo_id)
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= set(files)
    assert "model.safetensors" not in files
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == base_id
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] != base_id  # local kept
    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "peft" and card.data.base_model == base_id and "peft" in card.data.tags

    loaded = AutoPeftModelForSequenceClassification.from_pretrained(result.repo_id).eval()
    assert torch.allclose(_logits(loaded, tokenizer), _logits(model, tokenizer), atol=1e-6)


def test_adapter_base_from_the_run_config(local_hub, tmp_path, tokenizer):
    base_id = _push_base_model(tmp_path)
    _, out = _adapter_dir(tmp_path, tokenizer)
    (out / "run_config.yaml").write_text(yaml.safe_dump({"model_name_or_path": base_id}))
    assert push_run(out, "tiny-lora").base_model == base_id


def test_ensemble_of_adapters_names_each_members_hub_base_and_refuses_a_missing_or_unfinished_member(
        local_hub, tmp_path, tokenizer):
    import shutil

    from tlnlp.config.run_folder import MARKER, UnfinishedRunError

    base_id = _push_base_model(tmp_path)
    _, member = _adapter_dir(tmp_path, tokenizer)
    ensemble = tmp_path / "ensemble"
    for name in ("seed-0", "seed-1"):
        shutil.copytree(member, ensemble / "members" / name)
    shutil.copytree(member, ensemble / "members" / "seed-7")  # left from a larger ensemble: not listed, not pushed
    (ensemble / "members" / "seed-1" / "checkpoint-2").mkdir()
    (ensemble / "members" / "seed-1" / "checkpoint-2" / "adapter_model.safetensors").write_bytes(b"old")
    _card().save(ensemble / "README.md")
    (ensemble / "ensemble.json").write_text(json.dumps({"members": ["members/seed-0", "members/seed-1"],
                                                        "weights": [1.0, 1.0], "labels": LABELS}))
    result = push_run(ensemble, "tiny-ensemble", base_model=base_id)
    assert not result.adapter and result.base_model is None
    files = local_hub.files(result.repo_id)
    for name in ("seed-0", "seed-1"):
        assert json.loads(files[f"members/{name}/adapter_config.json"])["base_model_name_or_path"] == base_id
        assert f"members/{name}/adapter_model.safetensors" in files
    assert not any("checkpoint-" in p or "seed-7" in p for p in files)
    assert ModelCard(files["README.md"].decode()).data.library_name != "peft"

    (ensemble / "members" / "seed-1" / MARKER).write_text("{}")
    with pytest.raises(UnfinishedRunError, match="seed-1"):
        push_run(ensemble, "tiny-ensemble-2", base_model=base_id)
    shutil.rmtree(ensemble / "members" / "seed-1")
    with pytest.raises(FileNotFoundError, match="member members/seed-1 is missing"):
        push_run(ensemble, "tiny-ensemble-2", base_model=base_id)
    assert "tlnlp-tester/tiny-ensemble-2" not in local_hub.repos


def test_cli_push(local_hub, run_dir, capsys, monkeypatch):
    from tlnlp.__main__ import main

    assert main(["push", str(run_dir), "cli-run", "--private"]) == 0
    printed = capsys.readouterr().out
    assert "tlnlp-tester/cli-run" in printed and PLANTED_TOKEN not in printed
    assert local_hub.repos["tlnlp-tester/cli-run"].private
    monkeypatch.delenv("HF_TOKEN")
    assert main(["push", str(run_dir), "cli-run"]) == 2
    assert "hf auth login" in capsys.readouterr().err


def test_nested_models_are_left_out(local_hub, run_dir, tokenizer):
    _tiny_classifier().save_pretrained(run_dir / "merged")
    _tiny_classifier().save_pretrained(run_dir / "lm_adaptation")
    (run_dir / "runs").mkdir()
    (run_dir / "runs" / "events.out.tfevents.1").write_bytes(b"event")
    files = local_hub.files(push_run(run_dir, "tiny-run").repo_id)
    assert not any(p.startswith(("merged/", "lm_adaptation/")) for p in files), sorted(files)
    assert "runs/events.out.tfevents.1" in files  # TensorBoard logs go along, as with the Trainer's own push
    assert push_run(run_dir / "merged", "tiny-merged").files  # each nested model is pushable on its own
