"""Adapter discovery: target modules, feed-forward modules, task heads and task types for every architecture."""

from __future__ import annotations

import re

import pytest
import torch

from tests.conftest import tiny_config
from tlnlp.models import adapters as adapters_module
from tlnlp.models.adapters import (
    find_feedforward_modules,
    find_head_modules,
    find_target_modules,
    peft_task_type,
    public_base_name,
    restrict_to_blocks,
)

LORA_TARGETS = {"bert": ["query", "value"], "roberta": ["query", "value"], "distilbert": ["q_lin", "v_lin"],
                "gpt2": ["c_attn"], "llama": ["q_proj", "v_proj"]}
FEEDFORWARD = {"bert": "output.dense", "roberta": "output.dense", "distilbert": "ffn.lin2", "gpt2": "mlp.c_proj",
               "llama": "mlp.down_proj"}
HEADS = {"bert": ["bert.pooler", "classifier"], "roberta": ["classifier"],
         "distilbert": ["pre_classifier", "classifier"], "gpt2": ["transformer.ln_f", "score"],
         "llama": ["model.norm", "score"]}


def _module_names(model):
    return [name for name, _ in model.named_modules()]


def test_lora_targets_per_architecture(arch, tiny_classifier):
    model = tiny_classifier(arch)
    targets = find_target_modules(model, "lora")
    assert sorted(targets) == sorted(LORA_TARGETS[arch])
    for target in targets:  # every target exists inside the blocks
        assert any(name.endswith("." + target) for name in _module_names(model)), target


def test_generic_discovery_without_peft_tables(arch, tiny_classifier, monkeypatch):
    """Architectures PEFT has no table for get the same choice from layer names and shapes."""
    from peft.utils import constants

    monkeypatch.setattr(adapters_module, "_peft_table", lambda method, model_type: None)
    monkeypatch.setattr(constants, "TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING", {})
    model = tiny_classifier(arch)
    assert sorted(find_target_modules(model, "lora")) == sorted(t.rsplit(".", 1)[-1] for t in LORA_TARGETS[arch])
    assert find_feedforward_modules(model) == [FEEDFORWARD[arch]]
    ia3 = find_target_modules(model, "ia3")
    assert FEEDFORWARD[arch] in ia3 and ("c_attn" in ia3 if arch == "gpt2" else len(ia3) == 3)


def test_ia3_targets_include_feedforward(arch, tiny_classifier):
    model = tiny_classifier(arch)
    targets = find_target_modules(model, "ia3")
    feedforward = find_feedforward_modules(model, targets)
    assert feedforward and all(f in targets for f in feedforward)


def test_head_modules_per_architecture(arch, tiny_classifier):
    assert find_head_modules(tiny_classifier(arch)) == HEADS[arch]


def test_task_type_follows_the_model_class():
    from transformers import (
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )

    cases = [(AutoModelForSequenceClassification, "bert", "SEQ_CLS"), (AutoModelForQuestionAnswering, "bert",
             "QUESTION_ANS"), (AutoModelForTokenClassification, "bert", "TOKEN_CLS"),
             (AutoModelForCausalLM, "llama", "CAUSAL_LM"), (AutoModelForCausalLM, "gpt2", "CAUSAL_LM"),
             (AutoModel, "bert", "FEATURE_EXTRACTION"), (AutoModelForMaskedLM, "bert", None)]
    for auto, arch, expected in cases:
        model = auto.from_config(tiny_config(arch))
        assert peft_task_type(model) == expected, (auto.__name__, arch)
    qa = AutoModelForQuestionAnswering.from_config(tiny_config("bert"))
    assert find_head_modules(qa) == ["qa_outputs"]
    assert find_head_modules(AutoModelForCausalLM.from_config(tiny_config("llama"))) == []  # pretrained LM head


def test_restrict_to_blocks_keeps_pooler_and_head_out(tiny_classifier):
    model = tiny_classifier("bert")
    assert restrict_to_blocks(model, ["query"]) == ["query"]  # nothing outside the blocks is called query
    pattern = restrict_to_blocks(model, ["dense"])  # BERT's pooler is also called dense
    assert isinstance(pattern, str)
    matched = [name for name in _module_names(model) if re.fullmatch(pattern, name)]
    assert "bert.encoder.layer.0.attention.output.dense" in matched and "bert.encoder.layer.1.output.dense" in matched
    assert "bert.pooler.dense" not in matched


def test_public_base_name_maps_bundled_models_to_hub_ids(bundled_minilm_dir):
    hub_id = "sentence-transformers/all-MiniLM-L6-v2"
    assert public_base_name("bundled:minilm") == hub_id
    assert public_base_name(str(bundled_minilm_dir)) == hub_id
    assert public_base_name("org/some-model") == "org/some-model"


def test_bundled_minilm_targets(bundled_minilm_dir):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(bundled_minilm_dir)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    assert find_target_modules(model) == ["query", "value"]
    assert find_head_modules(model) == ["bert.pooler", "classifier"]
    assert len([n for n in _module_names(model) if n.endswith(".query")]) == 6


@pytest.mark.slow
def test_bundled_smollm2_targets_and_lora_forward():
    from tlnlp.assets import AssetError
    from tlnlp.config import ModelArgs
    from tlnlp.methods import MethodArgs, apply_method
    from tlnlp.models import load_classifier

    try:
        model, tokenizer = load_classifier(ModelArgs(model_name_or_path="bundled:smollm2"), labels=["no", "yes"])
    except AssetError as err:  # pragma: no cover - assets are installed by `make test`
        pytest.skip(str(err))
    assert find_target_modules(model) == ["q_proj", "v_proj"]
    assert find_head_modules(model) == ["model.norm", "score"]
    peft_model, _ = apply_method(model, MethodArgs(method="lora", lora_r=2))
    assert peft_model.peft_config["default"].base_model_name_or_path == "HuggingFaceTB/SmolLM2-135M-Instruct"
    adapted = [n for n, _ in peft_model.named_modules() if n.endswith(("q_proj", "v_proj"))]
    assert len(adapted) == 2 * 30  # every one of the 30 blocks
    batch = tokenizer(["a fine film", "dull"], return_tensors="pt", padding=True)
    out = peft_model(**batch, labels=torch.tensor([1, 0]))
    out.loss.backward()
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("score.modules_to_save" in n for n in trainable)
    assert all("lora_" in n or "modules_to_save" in n for n in trainable)
