"""``--push_to_hub`` in the training recipes, end to end against the stand-in Hub (tests/hub_server.py).

A token is planted (in ``HF_TOKEN`` or on the command line as ``--hub_token``) and every file the run wrote
(output folder, TensorBoard logs, checkpoints, the pushed repo) plus everything printed is scanned for it.
"""

from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard

from tests.hub_server import PLANTED_TOKEN, local_hub_fixture
from tests.recipes.conftest import load_recipe, recipe_args
from tlnlp.config import ConfigError, DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs

TYPES = (ModelArgs, DataArgs, MethodArgs, TrainingArgs)
TEXTS = ["a wonderful, moving film", "dull and far too long", "an average evening at the cinema"]


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    yield from local_hub_fixture(tmp_path, monkeypatch)


def _files_holding(folder, secret: str) -> list[str]:
    needle = secret.encode()
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _run(model, out, *extra):
    recipe = load_recipe("classification")
    args = recipe_args(model, out, "--push_to_hub", "--report_to", "tensorboard", "--num_train_epochs", "1", *extra)
    return recipe.main(*parse_args(*TYPES, args=args))


def _assert_token_nowhere(local_hub, out, capfd, tensorboard=True):
    assert not _files_holding(out, PLANTED_TOKEN)
    if tensorboard:  # the TensorBoard logs hold the run's arguments: scanned as well
        assert any((out / "runs").rglob("events.out.tfevents*"))
    for repo_id in local_hub.repos:
        assert not [p for p, data in local_hub.files(repo_id).items() if PLANTED_TOKEN.encode() in data], repo_id
    printed = capfd.readouterr()
    assert PLANTED_TOKEN not in printed.out and PLANTED_TOKEN not in printed.err


def test_push_to_hub_flag_pushes_the_final_folder(local_hub, tiny_bert_dir, tmp_path, capfd):
    import tlnlp

    out = tmp_path / "movie-tiny"
    _run(tiny_bert_dir, out, "--hub_model_id", "movie-tiny", "--hub_private_repo", "true")
    repo_id = "tlnlp-tester/movie-tiny"
    repo = local_hub.repos[repo_id]
    assert repo.private
    files = local_hub.files(repo_id)
    assert {"model.safetensors", "config.json", "README.md", "all_results.json", "predictions.jsonl",
            "confusion_matrix.png", "run_config.yaml"} <= set(files)
    assert not any(p.endswith(".bin") or p.startswith("checkpoint-") for p in files), sorted(files)
    assert local_hub.commit_messages(repo_id)[-1] == "End of training (tlnlp)"
    card = ModelCard(files["README.md"].decode())
    assert card.data.eval_results and card.data.pipeline_tag == "text-classification"
    for heading in ("## Method", "## Results", "## Label map", "## Hyperparameters", "## Reproduce",
                    "## Limitations", "## Use this model"):
        assert heading in card.text, heading
    from_hub = tlnlp.load_pipeline(repo_id, device="cpu")(TEXTS, top_k=None)
    from_disk = tlnlp.load_pipeline(out, device="cpu")(TEXTS, top_k=None)
    assert from_hub == from_disk
    _assert_token_nowhere(local_hub, out, capfd)


def test_ensemble_is_pushed_with_its_members_and_loads_back_by_repo_id(local_hub, tiny_bert_dir, tmp_path, capfd):
    import tlnlp

    recipe = load_recipe("classification")
    out = tmp_path / "movie-x2"
    args = recipe_args(tiny_bert_dir, out, "--push_to_hub", "--ensemble_seeds", "2", "--max_steps", "4",
                       "--save_strategy", "epoch", "--report_to", "none")
    recipe.main(*parse_args(*recipe.ARGUMENTS, args=args))
    members = json.loads((out / "ensemble.json").read_text())["members"]
    assert all(any(p.name.startswith("checkpoint-") for p in (out / m).iterdir()) for m in members)
    files = local_hub.files("tlnlp-tester/movie-x2")
    assert {"ensemble.json", "README.md", "all_results.json"} <= set(files)
    for member in members:  # each member's model, and none of its checkpoints
        assert {f"{member}/model.safetensors", f"{member}/config.json", f"{member}/README.md"} <= set(files)
    assert not any("checkpoint-" in p or p.endswith(".bin") for p in files), sorted(files)
    card = ModelCard(files["README.md"].decode())
    assert 'tlnlp.load_pipeline("tlnlp-tester/movie-x2")' in card.text and "ensemble's members" in card.text
    assert "AutoModel" not in card.text and 'pipeline("text-classification", model=' not in card.text
    from_hub = tlnlp.load_pipeline("tlnlp-tester/movie-x2", device="cpu")(TEXTS, top_k=None)
    assert from_hub == tlnlp.load_pipeline(out, device="cpu")(TEXTS, top_k=None)
    _assert_token_nowhere(local_hub, out, capfd, tensorboard=False)


def test_hub_token_flag_is_never_written(local_hub, tiny_bert_dir, tmp_path, monkeypatch, capfd):
    monkeypatch.delenv("HF_TOKEN")
    out = tmp_path / "flag-run"
    _run(tiny_bert_dir, out, "--hub_token", PLANTED_TOKEN, "--hub_strategy", "checkpoint",
         "--save_strategy", "epoch")
    files = local_hub.files("tlnlp-tester/flag-run")
    assert "README.md" in files and any(p.startswith("last-checkpoint/") for p in files)  # hub_strategy honoured
    assert "training_args.bin" not in files  # the Trainer's intermediate pushes leave it; the final push removes it
    _assert_token_nowhere(local_hub, out, capfd)


def test_push_without_a_token_is_refused_before_any_work(local_hub, tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(ConfigError) as err:
        parse_args(*TYPES, args=recipe_args(tiny_bert_dir, tmp_path / "x", "--push_to_hub"))
    assert "HF_TOKEN" in str(err.value) and "hf auth login" in str(err.value)
    assert not (tmp_path / "x").exists()


def test_lora_run_is_pushed_as_an_adapter_of_its_hub_base(local_hub, tiny_bert_dir, tmp_path):
    import json

    from huggingface_hub import snapshot_download

    from tlnlp.hub import push_run
    from tlnlp.models.adapter_io import load_adapter_model

    base_id = push_run(tiny_bert_dir, "tiny-bert").repo_id  # a base model others can download
    out = tmp_path / "lora-run"
    _run(base_id, out, "--method", "lora", "--learning_rate", "5e-3")
    files = local_hub.files("tlnlp-tester/lora-run")
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= set(files)
    assert "model.safetensors" not in files
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == base_id
    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "peft" and card.data.base_model == base_id

    local_model, tokenizer = load_adapter_model(out)
    remote_model, _ = load_adapter_model(snapshot_download("tlnlp-tester/lora-run"))
    import torch

    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(local_model(**batch).logits, remote_model(**batch).logits)
    assert remote_model.config.id2label == local_model.config.id2label
    import tlnlp

    from_hub = tlnlp.load_pipeline("tlnlp-tester/lora-run", device="cpu")(TEXTS, top_k=None)
    assert from_hub == tlnlp.load_pipeline(out, device="cpu")(TEXTS, top_k=None)


def _common(model, out):
    return ["--model_name_or_path", str(model), "--output_dir", str(out), "--max_steps", "2",
            "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8", "--report_to", "none",
            "--dataloader_num_workers", "0", "--push_to_hub", "--save_strategy", "no"]


def test_lm_adaptation_recipe_pushes_its_adapted_model(local_hub, tiny_bert_dir, tmp_path, capfd):
    recipe = load_recipe("lm_adaptation")
    out = tmp_path / "lm-tiny"
    args = [*_common(tiny_bert_dir, out), "--dataset_name", "bundled:movie_sentiment", "--max_train_samples", "24",
            "--max_seq_length", "32", "--perplexity_max_texts", "4"]
    recipe.main(*parse_args(ModelArgs, DataArgs, MethodArgs, TrainingArgs, recipe.LmArgs, args=args,
                            defaults=recipe.DEFAULTS))
    files = local_hub.files("tlnlp-tester/lm-tiny")
    assert {"model.safetensors", "README.md", "lm_results.json"} <= set(files)
    card = ModelCard(files["README.md"].decode())
    assert card.data.pipeline_tag == "fill-mask"
    assert 'pipeline("fill-mask", model="tlnlp-tester/lm-tiny")' in card.text
    _assert_token_nowhere(local_hub, out, capfd, tensorboard=False)


def test_question_answering_recipe_pushes_its_model(local_hub, tiny_bert_dir, tmp_path, capfd):
    from tlnlp.config.qa_args import QAArgs

    recipe = load_recipe("question_answering")
    out = tmp_path / "qa-tiny"
    args = [*_common(tiny_bert_dir, out), "--dataset_name", "bundled:qa_tlnlp", "--max_train_samples", "16",
            "--max_eval_samples", "8", "--max_predict_samples", "8", "--max_seq_length", "64",
            "--doc_stride", "16", "--version_2_with_negative"]
    recipe.main(*parse_args(ModelArgs, DataArgs, QAArgs, MethodArgs, TrainingArgs, args=args,
                            defaults=recipe.DEFAULTS))
    files = local_hub.files("tlnlp-tester/qa-tiny")
    assert {"model.safetensors", "README.md", "config.json"} <= set(files)
    assert ModelCard(files["README.md"].decode()).data.pipeline_tag == "question-answering"
    _assert_token_nowhere(local_hub, out, capfd, tensorboard=False)


def _training_recipes():
    import typing

    from tests.recipes.conftest import RECIPES

    found = []
    for path in sorted(RECIPES.glob("*.py")):
        module = load_recipe(path.stem)
        main = getattr(module, "main", None)
        hints = typing.get_type_hints(main) if main else {}
        types = [t for name, t in hints.items() if name != "return" and isinstance(t, type)]
        if TrainingArgs in types:
            found.append((path.stem, types))
    return found


def test_every_training_recipe_takes_the_push_flags():
    from transformers import HfArgumentParser

    recipes = _training_recipes()
    assert {"classification", "lm_adaptation", "question_answering", "ulmfit"} <= {name for name, _ in recipes}
    for name, types in recipes:
        text = HfArgumentParser(types).format_help()
        for flag in ("--push_to_hub", "--hub_model_id", "--hub_private_repo", "--hub_strategy", "--hub_token"):
            assert flag in text, (name, flag)


def test_label_entailment_recipe_pushes_its_final_outputs(local_hub, tiny_bert_dir, tmp_path, capfd):
    from tlnlp.zeroshot import EntailmentArgs

    recipe = load_recipe("train_entailment")
    out = tmp_path / "entail-tiny"
    args = [*_common(tiny_bert_dir, out), "--train_datasets", "bundled:trec6", "--max_samples_per_dataset", "24",
            "--max_seq_length", "32", "--zero_shot_eval_datasets", "bundled:sms_spam",
            "--zero_shot_max_samples", "8"]
    metrics = recipe.main(*parse_args(ModelArgs, EntailmentArgs, MethodArgs, TrainingArgs, args=args))
    files = local_hub.files("tlnlp-tester/entail-tiny")
    assert {"model.safetensors", "README.md", "config.json"} <= set(files)
    assert any(key.startswith("zeroshot_") for key in metrics)
    local = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.suffix in (".json", ".md")}
    assert {p for p in local if "/" not in p and not p.startswith("checkpoint")} <= set(files)
    for name in ("all_results.json", "zero_shot_results.json", "run_config.yaml"):  # pushed as finally written
        assert files[name] == (out / name).read_bytes(), name
    _assert_token_nowhere(local_hub, out, capfd, tensorboard=False)


def test_a_setfit_run_pushes_and_loads_back_from_the_hub(local_hub, tiny_bert_dir, tmp_path, capfd):
    import tlnlp

    out = tmp_path / "setfit-tiny"
    _run(tiny_bert_dir, out, "--method", "setfit", "--setfit_max_steps", "2", "--setfit_batch_size", "4",
         "--hub_model_id", "setfit-tiny")
    files = local_hub.files("tlnlp-tester/setfit-tiny")
    assert {"classifier_head.safetensors", "classifier_head.json", "modules.json", "model.safetensors",
            "1_Pooling/config.json", "README.md", "all_results.json"} <= set(files)
    assert not any(p.endswith((".bin", ".pkl", ".pt")) or p.startswith("checkpoint-") for p in files), sorted(files)
    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "setfit" and "## Head" in card.text
    from_hub = tlnlp.load_pipeline("tlnlp-tester/setfit-tiny", device="cpu")(TEXTS, top_k=None)
    assert from_hub == tlnlp.load_pipeline(out, device="cpu")(TEXTS, top_k=None)
    assert [r["label"] for r in from_hub[0]] in (["negative", "positive"], ["positive", "negative"])
    _assert_token_nowhere(local_hub, out, capfd, tensorboard=False)
