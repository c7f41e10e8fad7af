"""PEFT adapter methods on tiny models: what trains, what stays bit-identical, save/reload, merge, several adapters.

Every method is applied to every tiny architecture (BERT, RoBERTa, DistilBERT, GPT-2, Llama) and trained for a
few AdamW steps; parameters outside the adapter and the head must not move.
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import tiny_config
from tlnlp.methods import MethodArgs, apply_method
from tlnlp.models import AdapterSet, load_adapter_model, merge_adapter
from tlnlp.models.adapter_io import save_task_config, set_base_model_name

METHODS = ["lora", "dora", "adalora", "ia3", "prompt_tuning", "prefix_tuning", "p_tuning", "loha", "lokr"]
MERGEABLE = ["lora", "dora", "adalora", "ia3", "loha", "lokr"]
#: (method, arch) pairs that PEFT cannot serve; each must fail with a clear message instead.
UNSUPPORTED = {("loha", "gpt2"): "Conv1D", ("lokr", "gpt2"): "Conv1D", ("prefix_tuning", "distilbert"): "cache"}


def _batch(n: int = 8, length: int = 6, num_labels: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 1000, (n, length), generator=generator)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
            "labels": torch.arange(n) % num_labels}


def _train(model: torch.nn.Module, steps: int = 3, num_labels: int = 2) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.01)
    batch = _batch(num_labels=num_labels)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    model.eval()


def _is_adapter_or_head(name: str) -> bool:
    return any(part in name for part in ("lora_", "ia3_", "hada_", "lokr_", "prompt_encoder", "modules_to_save"))


def _args(method: str, **overrides) -> MethodArgs:
    return MethodArgs(method=method, lora_r=2, num_virtual_tokens=3, adalora_init_r=4, adalora_target_r=2,
                      **overrides)


@pytest.mark.parametrize("method", METHODS)
def test_only_adapter_and_head_train(method, arch, tiny_classifier):
    model = tiny_classifier(arch, num_labels=3)
    if (method, arch) in UNSUPPORTED:
        with pytest.raises(ValueError, match=UNSUPPORTED[method, arch]):
            apply_method(model, _args(method))
        return
    peft_model, groups = apply_method(model, _args(method))
    assert groups is None
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all(_is_adapter_or_head(n) for n in trainable), sorted(trainable)
    _train(peft_model, num_labels=3)
    after = dict(peft_model.named_parameters())
    frozen_moved = [n for n in before if n not in trainable and not torch.equal(before[n], after[n])]
    assert not frozen_moved, frozen_moved  # the backbone (and the original head copy) are bit-identical
    head = [n for n in trainable if "modules_to_save" in n]
    assert head and all(not torch.equal(before[n], after[n]) for n in head if n.endswith("weight"))
    adapter = [n for n in trainable if "modules_to_save" not in n]
    assert adapter and any(not torch.equal(before[n], after[n]) for n in adapter)


def _save(peft_model, tokenizer, folder, base_dir):
    set_base_model_name(peft_model, str(base_dir))
    peft_model.save_pretrained(folder)
    save_task_config(peft_model, folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture
def base_dir(tmp_path, tokenizer):
    """Factory: save a tiny classifier's pretrained starting point (no labels yet) and return its folder."""
    from transformers import AutoModelForSequenceClassification

    def make(arch="bert", name="base"):
        folder = tmp_path / f"{name}_{arch}"
        torch.manual_seed(1)
        AutoModelForSequenceClassification.from_config(tiny_config(arch)).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return folder

    return make


def _labelled(base, labels, arch="bert"):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(2)
    return AutoModelForSequenceClassification.from_pretrained(
        base, id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)},
        ignore_mismatched_sizes=True)


@pytest.mark.parametrize(("method", "arch"), [("lora", "bert"), ("lora", "distilbert"), ("ia3", "roberta"),
                                              ("prompt_tuning", "bert"), ("prefix_tuning", "llama"),
                                              ("adalora", "gpt2"), ("p_tuning", "bert")])
def test_head_and_labels_restored_on_reload(method, arch, base_dir, tokenizer, tmp_path):
    base = base_dir(arch)
    labels = ["sad", "neutral", "happy"]
    peft_model, _ = apply_method(_labelled(base, labels, arch), _args(method))
    _train(peft_model, num_labels=3)
    batch = {k: v for k, v in _batch().items() if k != "labels"}
    with torch.no_grad():
        expected = peft_model(**batch).logits
    folder = tmp_path / "adapter"
    _save(peft_model, tokenizer, folder, base)
    assert not list(folder.glob("model*.safetensors")) and (folder / "adapter_model.safetensors").is_file()
    reloaded, _ = load_adapter_model(folder)
    with torch.no_grad():
        got = reloaded(**batch).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    config = reloaded.get_base_model().config
    assert [config.id2label[i] for i in range(3)] == labels


@pytest.mark.parametrize("method", MERGEABLE)
def test_merged_model_matches_adapter_logits(method, tiny_classifier):
    peft_model, _ = apply_method(tiny_classifier("llama", num_labels=3), _args(method))
    _train(peft_model, num_labels=3)
    batch = {k: v for k, v in _batch().items() if k != "labels"}
    with torch.no_grad():
        expected = peft_model(**batch).logits
        merged = merge_adapter(peft_model)
        got = merged(**batch).logits
    assert not any("lora_" in n or "modules_to_save" in n for n, _ in merged.named_parameters())
    assert (got - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("method", ["lora", "prompt_tuning"])
def test_load_pipeline_runs_adapter_folders(method, base_dir, tokenizer, tmp_path):
    import tlnlp

    base = base_dir("bert")
    labels = ["sad", "neutral", "happy"]
    peft_model, _ = apply_method(_labelled(base, labels), _args(method))
    _train(peft_model, num_labels=3)
    _save(peft_model, tokenizer, tmp_path / "adapter", base)
    texts = ["a warm and funny film", "dull"]
    with torch.no_grad():
        expected = torch.softmax(peft_model(**tokenizer(texts, return_tensors="pt", padding=True)).logits, -1)
    pipe = tlnlp.load_pipeline(tmp_path / "adapter")
    for text, probs in zip(texts, expected, strict=True):
        scores = {row["label"]: row["score"] for row in pipe(text, top_k=None)}
        assert [scores[label] for label in labels] == pytest.approx(probs.tolist(), abs=1e-6)


def test_prompt_methods_refuse_merge():
    with pytest.raises(ValueError, match="merge_adapter"):
        MethodArgs(method="prompt_tuning", merge_adapter=True)


def test_target_module_override_and_errors(tiny_classifier):
    peft_model, _ = apply_method(tiny_classifier("bert"), _args("lora", target_modules=["key"]))
    adapted = {n.rsplit(".", 3)[0] for n, _ in peft_model.named_parameters() if "lora_A" in n}
    assert adapted and all(n.endswith(".key") for n in adapted)
    with pytest.raises(ValueError, match=r"qury.*query"):
        apply_method(tiny_classifier("bert"), _args("lora", target_modules=["qury"]))
    with pytest.raises(ValueError, match="target_modules"):
        MethodArgs(method="full", target_modules=["query"])
    with pytest.raises(ValueError, match="lora_r=0"):
        MethodArgs(method="lora", lora_r=0)
    with pytest.raises(ValueError, match="adalora_target_r"):
        MethodArgs(method="adalora", adalora_init_r=4, adalora_target_r=8)


@pytest.mark.parametrize("method", ["lora", "ia3", "prompt_tuning", "prefix_tuning"])
def test_question_answering_keeps_its_head(method, tmp_path, tokenizer):
    from transformers import AutoModelForQuestionAnswering

    torch.manual_seed(0)
    base = tmp_path / "qa_base"
    AutoModelForQuestionAnswering.from_config(tiny_config("bert")).save_pretrained(base)
    peft_model, _ = apply_method(AutoModelForQuestionAnswering.from_pretrained(base), _args(method))
    assert type(peft_model).__name__ == "PeftModelForQuestionAnswering"
    assert peft_model.peft_config["default"].modules_to_save == ["qa_outputs"]
    head = peft_model.base_model.model.qa_outputs if method in ("lora", "ia3") else peft_model.base_model.qa_outputs
    before = head.modules_to_save["default"].weight.detach().clone()
    batch = {k: v for k, v in _batch().items() if k != "labels"}
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    peft_model.train()
    for _ in range(2):
        optimizer.zero_grad()
        out = peft_model(**batch, start_positions=torch.ones(8, dtype=torch.long), end_positions=torch.full((8,), 2))
        out.loss.backward()
        optimizer.step()
    assert not torch.equal(before, head.modules_to_save["default"].weight)
    peft_model.eval()
    with torch.no_grad():
        expected = peft_model(**batch).start_logits
    _save(peft_model, tokenizer, tmp_path / "qa_adapter", base)
    reloaded, _ = load_adapter_model(tmp_path / "qa_adapter")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).start_logits, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_causal_lm_trains_adapter_only(method, arch):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(arch))
    if (method, arch) in UNSUPPORTED:
        with pytest.raises(ValueError, match=UNSUPPORTED[method, arch]):
            apply_method(model, _args(method))
        return
    peft_model, _ = apply_method(model, _args(method))
    assert type(peft_model).__name__ == "PeftModelForCausalLM"
    assert not peft_model.peft_config["default"].modules_to_save  # the pretrained LM head is not retrained
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all(_is_adapter_or_head(n) and "modules_to_save" not in n for n in trainable)
    ids = _batch()["input_ids"]
    peft_model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in peft_model.named_parameters()
               if n in trainable)  # the adapter (a prefix too) reaches the loss


def test_ulmfit_rates_apply_to_adapter_groups(tiny_classifier):
    model, groups = apply_method(tiny_classifier("bert"), _args("lora", discriminative_factor=2.0))
    by_name = {g["name"]: g for g in groups}
    # under LoRA the embeddings have nothing to train; blocks carry their LoRA weights, the head its own copy
    assert "embeddings" not in by_name and {"block_0", "block_1", "head"} <= set(by_name)
    assert by_name["head"]["lr_scale"] == 1.0
    assert by_name["block_1"]["lr_scale"] == pytest.approx(0.5)
    assert by_name["block_0"]["lr_scale"] == pytest.approx(0.25)
    names = {id(p): n for n, p in model.named_parameters()}
    for name in ("block_0", "block_1"):
        assert all("lora_" in names[id(p)] and f"layer.{name[-1]}." in names[id(p)] for p in by_name[name]["params"])
    assert all("modules_to_save" in names[id(p)] for p in by_name["head"]["params"])


def test_adapter_set_switches_heads_labels_and_weights(base_dir, tokenizer, tmp_path):
    base = base_dir("bert")
    tasks = {"sentiment": ["negative", "positive"], "topic": ["sport", "science", "art"]}
    expected = {}
    batch = {k: v for k, v in _batch().items() if k != "labels"}
    for seed, (name, labels) in enumerate(tasks.items()):
        torch.manual_seed(seed)
        peft_model, _ = apply_method(_labelled(base, labels), _args("lora"))
        _train(peft_model, num_labels=len(labels))
        with torch.no_grad():
            expected[name] = peft_model(**batch).logits
        _save(peft_model, tokenizer, tmp_path / name, base)
    adapters = AdapterSet.load({name: tmp_path / name for name in tasks})
    assert adapters.names == ["sentiment", "topic"]
    for name in ["topic", "sentiment", "topic"]:  # switch back and forth
        adapters.use(name)
        with torch.no_grad():
            got = adapters.model(**batch).logits
        torch.testing.assert_close(got, expected[name], rtol=0, atol=1e-6)
        assert adapters.labels() == tasks[name]
        rows = adapters.predict(["a b c", "d e"])
        assert {r["label"] for r in rows} <= set(tasks[name]) and set(rows[0]["scores"]) == set(tasks[name])
    with pytest.raises(KeyError, match="sentiment, topic"):
        adapters.use("news")


@pytest.mark.parametrize("head", ["classification", "question-answering"])
def test_write_merged_checks_every_logits_output(head, tmp_path, tokenizer):
    from types import SimpleNamespace

    from datasets import Dataset, DatasetDict
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification, DataCollatorWithPadding

    from tlnlp.methods.adapters import write_merged

    torch.manual_seed(0)
    auto = AutoModelForQuestionAnswering if head == "question-answering" else AutoModelForSequenceClassification
    peft_model, _ = apply_method(auto.from_config(tiny_config("bert")), _args("lora"))
    if head == "classification":
        _train(peft_model)
    saved = {}
    trainer = SimpleNamespace(model=peft_model, data_collator=DataCollatorWithPadding(tokenizer),
                              processing_class=tokenizer, save_metrics=lambda split, m: saved.update({split: m}))
    rows = Dataset.from_dict(dict(tokenizer(["a good film", "dull", "what a ride"])))
    result = write_merged(trainer, DatasetDict(validation=rows), tmp_path)
    assert result["merge_checked_rows"] == 3 and result["merge_max_abs_logit_diff"] <= 1e-4
    assert saved["merge"] == result and (tmp_path / "merged" / "model.safetensors").is_file()
