"""The catalogue's cases about models, QA data, prompt and zero-shot specs, the Hub offline and GGUF files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.recipes.bad_inputs_catalogue import BUNDLED, FAST, TINY, Case

EVAL = ("--dataset_name", "bundled:movie_sentiment")


def _model_copy(tmp: Path, model: Path, name: str = "model") -> Path:
    target = tmp / name
    shutil.copytree(model, target)
    return target


def _corrupt_weights(tmp: Path, model: Path) -> None:
    (_model_copy(tmp, model) / "model.safetensors").write_bytes(b"\x00garbage" * 16)


def _truncated_weights(tmp: Path, model: Path) -> None:
    weights = _model_copy(tmp, model) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:2000])


def _pickle_only(tmp: Path, model: Path) -> None:
    folder = _model_copy(tmp, model)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")


def _no_tokenizer(tmp: Path, model: Path) -> None:
    folder = tmp / "model"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model / name, folder / name)


def _no_config(tmp: Path, model: Path) -> None:
    (_model_copy(tmp, model) / "config.json").unlink()


def _model(case_id: str, prepare, *expect: str, model: str = "{tmp}/model", **kw) -> Case:
    """A classification run on bundled data whose model is bad."""
    argv = (*FAST, *BUNDLED, "--model_name_or_path", model)
    return Case(case_id, kw.pop("group", "models"), argv=argv, prepare=prepare, expect=expect, **kw)


def _qa_rows(**changes) -> list[dict]:
    context = "The cat sat on the mat in the hall."
    rows = [{"id": f"q{i}", "question": "Where did the cat sit?", "context": context,
             "answers": {"text": ["the mat"], "answer_start": [15]}} for i in range(6)]
    for key, (index, value) in changes.items():
        rows[index][key] = value
    return rows


def _qa(case_id: str, rows, *expect: str, extra: tuple[str, ...] = ()) -> Case:
    content = rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows)
    name = "train.json" if isinstance(rows, str) else "train.jsonl"
    argv = ("--train_file", f"{{tmp}}/{name}", *TINY, *FAST, *extra)
    return Case(case_id, "QA", recipe="question_answering", argv=argv, files={name: content}, expect=expect)


def _spec(case_id: str, recipe: str, flags: tuple[str, ...], spec: str | None, *expect: str) -> Case:
    files = {"spec.yaml": spec} if spec is not None else {}
    return Case(case_id, "specs", recipe=recipe, argv=("--model_name_or_path", "{model}", *EVAL, *flags),
                files=files, expect=expect)


_PROMPT = 'version: 1\ntemplate: "Review: {text}\\nSentiment: {label}"\nverbalizer: {negative: bad, positive: good}\n'
_NO_ANSWER = {"text": [], "answer_start": []}

MODEL_CASES = [
    _model("missing_model_folder", None, "'./nope/model'", "does not exist", "bundled:minilm", model="./nope/model"),
    _model("corrupt_safetensors", _corrupt_weights, "model.safetensors", "cannot be read", "Fix:"),
    _model("truncated_safetensors", _truncated_weights, "model.safetensors", "cannot be read", "Fix:"),
    _model("pickle_only_weights", _pickle_only, "pickle", "save_pretrained", "model.safetensors"),
    _model("missing_tokenizer", _no_tokenizer, "no tokenizer", "--tokenizer_name", "save_pretrained"),
    _model("missing_config", _no_config, "config.json", "Fix:"),
    _model("unknown_bundled_model", None, "'bundled:minilmm'", "Did you mean bundled:minilm", model="bundled:minilmm"),
    _model("hub_model_offline", None, "'someorg/no-such-model'", "unreachable", "bundled:minilm",
           model="someorg/no-such-model", group="Hub/offline", subprocess=True),
    Case("hub_dataset_offline", "Hub/offline", argv=("--dataset_name", "someorg/no-such-data", *TINY, *FAST),
         expect=("'someorg/no-such-data'", "unreachable", "Fix: use one of them")),
    _model("gguf_not_gguf", lambda tmp, _: (tmp / "model.gguf").write_bytes(b"not a gguf file" * 8),
           "model.gguf", "not a GGUF file", "Fix:", model="{tmp}/model.gguf", group="GGUF"),
    _model("gguf_truncated", lambda tmp, _: (tmp / "model.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x01" * 20),
           "model.gguf", "damaged or truncated", "Fix:", model="{tmp}/model.gguf", group="GGUF"),
    _qa("qa_wrong_offset", _qa_rows(answers=(2, {"text": ["the mat"], "answer_start": [3]})),
        "answer_start=3", "'q2'", "--repair_answer_starts"),
    _qa("qa_answer_not_in_context", _qa_rows(answers=(1, {"text": ["the dog"], "answer_start": [15]})),
        "'q1'", "does not occur in its context", "Fix: correct the answer texts", extra=("--repair_answer_starts",)),
    _qa("qa_duplicate_ids", _qa_rows(id=(3, "q0")), "column 'id'", "duplicate ids 'q0'", "Fix: make the ids unique"),
    _qa("qa_bad_answers", _qa_rows(answers=(4, "the mat")), "column 'answers'", "'q4'", "'the mat'",
        "--answers_column"),
    _qa("qa_negative_start", _qa_rows(answers=(0, {"text": ["the mat"], "answer_start": [-1]})), "'q0'",
        "non-negative integer starts", "Fix:"),
    _qa("qa_missing_context", [{k: v for k, v in r.items() if k != "context"} for r in _qa_rows()],
        "no column 'context'", "--context_column"),
    _qa("qa_unanswerable_without_v2", _qa_rows(answers=(5, _NO_ANSWER)), "without an answer", "1 in train",
        "Fix: add --version_2_with_negative"),
    _qa("qa_squad_without_paragraphs", json.dumps({"data": [{"title": "x"}]}), "article 0", "'paragraphs'",
        "Fix:"),
    _spec("prompt_spec_missing_verbalizer", "few_shot", ("--prompt_spec", "{tmp}/spec.yaml"),
          'version: 1\ntemplate: "Review: {text}\\nSentiment: {label}"\n', "spec.yaml",
          "missing required key 'verbalizer'"),
    _spec("prompt_spec_no_label_field", "few_shot", ("--prompt_spec", "{tmp}/spec.yaml"),
          _PROMPT.replace("\\nSentiment: {label}", ""), "template=", "must end with {label}"),
    _spec("prompt_spec_missing_class", "few_shot", ("--prompt_spec", "{tmp}/spec.yaml"),
          _PROMPT.replace(", positive: good", ""), "no words for label(s) ['positive']", "Add them under"),
    _spec("prompt_spec_missing_file", "few_shot", ("--prompt_spec", "{tmp}/nope.yaml"), None, "nope.yaml",
          "does not exist", "built-in spec name"),
    _spec("zero_shot_spec_missing_version", "zero_shot", ("--spec_file", "{tmp}/spec.yaml", "--spec", "mine"),
          'mine:\n  templates: ["This is {}."]\n', "'mine'", "has no version", "add e.g. `version: 1.0.0`"),
    _spec("zero_shot_spec_no_slot", "zero_shot", ("--spec_file", "{tmp}/spec.yaml", "--spec", "mine"),
          'mine:\n  version: 1\n  templates: ["This is it."]\n', "'This is it.'", "no {} slot", "e.g."),
    _spec("zero_shot_spec_unknown_key", "zero_shot", ("--spec_file", "{tmp}/spec.yaml", "--spec", "mine"),
          'mine:\n  version: 1\n  template: ["This is {}."]\n', "unknown keys ['template']", "templates"),
    _spec("zero_shot_unknown_spec", "zero_shot", ("--spec", "sentimnt"), None, "'sentimnt'", "sentiment"),
    _spec("zero_shot_spec_file_missing", "zero_shot", ("--spec_file", "{tmp}/nope.yaml"), None, "nope.yaml",
          "file not found"),
]


def _decoder_check(argv: list[str]) -> None:
    """A decoder whose tokenizer has no pad token loads and pads with one of its own tokens."""
    from tlnlp.config import ModelArgs
    from tlnlp.models import load_classifier

    model, tokenizer = load_classifier(ModelArgs(model_name_or_path=argv[1]), ["negative", "positive"])
    assert tokenizer.pad_token is not None and model.config.pad_token_id == tokenizer.pad_token_id


def _decoder_without_pad(tmp: Path, model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.conftest import tiny_config

    torch.manual_seed(0)
    decoder = AutoModelForCausalLM.from_config(tiny_config("gpt2", pad_token_id=None, eos_token_id=None))
    decoder.save_pretrained(tmp / "decoder")
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(tmp / "decoder")


MODEL_LOADS = [
    Case("decoder_without_pad_token", "models", argv=("--model_name_or_path", "{tmp}/decoder"),
         prepare=_decoder_without_pad, check=_decoder_check),
]
