"""Layer groups and parameter counts: tiny architectures, other heads, PEFT wrappers, the real MiniLM."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import tiny_config
from tlnlp.models import LayerGroup, count_parameters, get_layer_groups


def _word_embedding_name(model: torch.nn.Module) -> str:
    weight = model.get_input_embeddings().weight
    return next(name for name, param in model.named_parameters() if param is weight)


def _check_partition(model: torch.nn.Module, groups: list[LayerGroup], n_layers: int) -> None:
    assert [g.name for g in groups] == ["embeddings"] + [f"block_{i}" for i in range(n_layers)] + ["head"]
    names = [name for name, _ in model.named_parameters()]
    grouped = [name for group in groups for name in group.param_names]
    assert sorted(grouped) == sorted(names)  # every parameter exactly once
    assert _word_embedding_name(model) in groups[0].param_names
    for i, group in enumerate(groups[1:-1]):
        assert group.param_names, f"block_{i} is empty"
        assert all(f".{i}." in name for name in group.param_names)


def test_groups_on_tiny_classifiers(arch, tiny_classifier):
    model = tiny_classifier(arch)
    groups = get_layer_groups(model)
    _check_partition(model, groups, n_layers=2)
    prefix = model.base_model_prefix + "."
    task_head = [name for name, _ in model.named_parameters() if not name.startswith(prefix)]
    assert task_head and set(task_head) <= set(groups[-1].param_names)
    assert sum(g.num_parameters(model) for g in groups) == count_parameters(model)["total"]


@pytest.mark.parametrize(
    ("arch", "after_blocks"),
    [("bert", "bert.pooler.dense.weight"), ("gpt2", "transformer.ln_f.weight"),
     ("llama", "model.norm.weight")],
)
def test_backbone_layers_after_the_blocks_go_to_head(tiny_classifier, arch, after_blocks):
    groups = get_layer_groups(tiny_classifier(arch))
    assert after_blocks in groups[-1].param_names


@pytest.mark.parametrize(
    ("arch", "auto_class", "head_param"),
    [
        ("bert", "AutoModelForMaskedLM", "cls.predictions.transform.dense.weight"),
        ("bert", "AutoModelForQuestionAnswering", "qa_outputs.weight"),
        ("llama", "AutoModelForCausalLM", "lm_head.weight"),
        ("gpt2", "AutoModelForCausalLM", "transformer.ln_f.weight"),
        ("distilbert", "AutoModelForMaskedLM", "vocab_transform.weight"),
    ],
)
def test_groups_on_lm_and_qa_heads(arch, auto_class, head_param):
    import transformers

    torch.manual_seed(0)
    model = getattr(transformers, auto_class).from_config(tiny_config(arch))
    groups = get_layer_groups(model)
    _check_partition(model, groups, n_layers=2)
    assert head_param in groups[-1].param_names


def test_tied_lm_head_is_counted_once():
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(tiny_config("gpt2", vocab_size=100))
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    groups = get_layer_groups(model)
    grouped = [name for group in groups for name in group.param_names]
    assert "lm_head.weight" not in grouped and "transformer.wte.weight" in groups[0].param_names
    unique = {id(p): p.numel() for p in model.parameters()}
    assert count_parameters(model)["total"] == sum(unique.values())


def test_groups_on_bundled_minilm(bundled_minilm_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(bundled_minilm_dir, num_labels=2)
    groups = get_layer_groups(model)
    _check_partition(model, groups, n_layers=6)
    assert groups[-1].param_names == ["bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                      "classifier.weight", "classifier.bias"]


def test_groups_on_peft_wrapped_model(tiny_classifier):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_classifier("bert"),
                           LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"]))
    groups = get_layer_groups(model)
    _check_partition(model, groups, n_layers=2)
    params = dict(model.named_parameters())
    assert all(name in params for group in groups for name in group.param_names)
    assert all(name.startswith("base_model.model.") for group in groups for name in group.param_names)
    assert any("lora_A" in name for name in groups[1].param_names)
    head_trainable = [n for n in groups[-1].param_names if params[n].requires_grad]
    assert head_trainable and all("classifier" in n for n in head_trainable)  # modules_to_save copy


def test_deberta_relative_embeddings_feed_the_blocks():
    from transformers import AutoModelForSequenceClassification, DebertaV2Config

    config = DebertaV2Config(vocab_size=100, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                             num_hidden_layers=2, relative_attention=True, position_buckets=16,
                             norm_rel_ebd="layer_norm", pos_att_type=["p2c", "c2p"])
    model = AutoModelForSequenceClassification.from_config(config)
    groups = get_layer_groups(model)
    _check_partition(model, groups, n_layers=2)
    assert "deberta.encoder.rel_embeddings.weight" in groups[0].param_names
    assert "classifier.weight" in groups[-1].param_names


def test_model_without_blocks_names_the_fix():
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match="LAYER_SPLITTERS"):
        get_layer_groups(model)


def test_count_parameters_follows_requires_grad(tiny_classifier):
    model = tiny_classifier("bert")
    total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == {"trainable": total, "total": total, "trainable_percent": 100.0}
    model.classifier.requires_grad_(False)
    counts = count_parameters(model)
    frozen = sum(p.numel() for p in model.classifier.parameters())
    assert counts["trainable"] == total - frozen
    assert counts["trainable_percent"] == pytest.approx(100 * (total - frozen) / total)
