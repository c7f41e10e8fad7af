"""The LM-adaptation recipe: masked LM (encoder) and causal LM (decoder), its outputs, and its configs."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from tests.conftest import tiny_config
from tests.recipes.conftest import ROOT, load_recipe
from tlnlp.config import ConfigError, DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.methods import MethodArgs

CONFIGS = sorted((ROOT / "recipes" / "configs" / "lm_adaptation").glob("*.yaml"))


def _types():
    return (ModelArgs, DataArgs, MethodArgs, TrainingArgs, load_recipe("lm_adaptation").LmArgs)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_parses_and_starts_with_its_launch_line(config):
    first = config.read_text().splitlines()[0]
    assert first.startswith("# accelerate launch") and f"--config recipes/configs/lm_adaptation/{config.name}" in first
    parsed = parse_args(*_types(), args=["--config", str(config)], defaults=load_recipe("lm_adaptation").DEFAULTS)
    assert parsed[2].method == "ulmfit" and parsed[2].ulmfit_settings().gradual_unfreezing == "off"


def _corpus(tmp_path, name="corpus.txt", lines=120):
    topics = ["cat", "dog", "bird", "fish"]
    path = tmp_path / name
    path.write_text("\n".join(f"the {topics[i % 4]} sat on the mat and looked at the {topics[(i + 1) % 4]}"
                              for i in range(lines)), encoding="utf-8")
    return path


def _run(model_dir, data_flags, out, *extra):
    recipe = load_recipe("lm_adaptation")
    args = ["--model_name_or_path", str(model_dir), *data_flags, "--output_dir", str(out), "--max_seq_length", "32",
            "--per_device_train_batch_size", "8", "--learning_rate", "3e-3", "--num_train_epochs", "3",
            "--logging_steps", "2", "--report_to", "none", "--perplexity_max_texts", "12", *extra]
    return recipe.main(*parse_args(*_types(), args=args, defaults=recipe.DEFAULTS))


def test_masked_lm_adaptation_writes_a_model_the_classifier_loads(tmp_path, tiny_bert_dir):
    out = tmp_path / "mlm"
    metrics = _run(tiny_bert_dir, ["--train_file", str(_corpus(tmp_path))], out, "--head_warmup_steps", "4")
    for name in ("model.safetensors", "config.json", "tokenizer.json", "lm_results.json", "all_results.json",
                 "learning_rates.png", "training_curves.png", "run_config.yaml", "environment.json", "README.md"):
        assert (out / name).is_file(), name
    results = json.loads((out / "lm_results.json").read_text())
    assert results["measure"] == "pseudo_perplexity" and results["held_out_texts"] == 12
    assert results["head_was_new"]  # the tiny checkpoint is a classifier: its masked-LM head is new
    assert metrics["perplexity_after"] < metrics["perplexity_before"]
    assert "pseudo-perplexity" in (out / "README.md").read_text()
    # the adapted backbone is what the classification recipe starts from
    from tlnlp.models import load_classifier

    classifier, _ = load_classifier(ModelArgs(str(out)), labels=["a", "b"])
    adapted = load_file(str(out / "model.safetensors"))
    weights = dict(classifier.named_parameters())
    key = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(weights[key], adapted[key])
    assert not torch.equal(adapted[key], load_file(str(tiny_bert_dir / "model.safetensors"))[key])


def test_causal_lm_adaptation_from_a_jsonl_text_column(tmp_path, tokenizer):
    folder = tmp_path / "tiny_gpt2"
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config("gpt2")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    lines = _corpus(tmp_path).read_text().splitlines()
    data = tmp_path / "reviews.jsonl"
    data.write_text("\n".join(json.dumps({"id": i, "body": line}) for i, line in enumerate(lines)), encoding="utf-8")
    metrics = _run(folder, ["--train_file", str(data), "--text_column", "body"], tmp_path / "clm")
    results = json.loads((tmp_path / "clm" / "lm_results.json").read_text())
    assert results["measure"] == "perplexity" and results["objective"] == "clm" and not results["head_was_new"]
    assert metrics["perplexity_after"] < 0.9 * metrics["perplexity_before"]  # it learns the domain


def test_bad_objective_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="lm_objective='seq2seq'"):
        parse_args(*_types(), args=["--dataset_name", "bundled:trec6", "--output_dir", str(tmp_path),
                                    "--lm_objective", "seq2seq"])
