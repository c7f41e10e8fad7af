"""Saved adapters: load base + adapter from an adapter-only folder, merge, and switch between several adapters.

An adapter run's output folder holds ``adapter_model.safetensors`` and ``adapter_config.json`` (PEFT's files,
with the task head among the saved modules), the tokenizer, and ``task_config.json``: the trained model's
transformers config, which carries the label names and problem type that the base model's own config lacks.
``adapter_config.json`` names the base model by its Hub id when it was bundled, so the folder is also a
regular PEFT adapter repository once pushed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from tlnlp.models.adapters import fix_prefix_tuning, public_base_name
from tlnlp.models.layers import unwrap_model
from tlnlp.models.loading import quiet_load_report, resolve_model_path

__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_WEIGHTS",
    "TASK_CONFIG",
    "AdapterSet",
    "is_adapter_dir",
    "load_adapter_model",
    "merge_adapter",
    "save_task_config",
    "set_base_model_name",
]

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: The trained model's transformers config (labels, problem type, architecture), saved next to the adapter.
TASK_CONFIG = "task_config.json"


def is_adapter_dir(folder: str | Path) -> bool:
    """Whether ``folder`` holds a PEFT adapter (``adapter_config.json``) and no full model weights."""
    folder = Path(folder)
    return (folder / ADAPTER_CONFIG).is_file() and not any(folder.glob("model*.safetensors"))


def save_task_config(model: torch.nn.Module, folder: str | Path) -> Path:
    """Write the trained model's config (labels, problem type) as ``task_config.json`` into ``folder``.

    Args:
        model: The trained model, possibly wrapped by PEFT.
        folder: The adapter folder.

    Returns:
        The written file.
    """
    path = Path(folder) / TASK_CONFIG
    config = unwrap_model(model).config.to_dict()
    config.pop("_name_or_path", None)  # a local path; the base model is named in adapter_config.json
    path.write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


def set_base_model_name(model: Any, name_or_path: str) -> str:
    """Record the base model under its public name in every adapter config of a PEFT model.

    Args:
        model: A PEFT model.
        name_or_path: What the user named the base model (``bundled:minilm``, a Hub id or a folder).

    Returns:
        The recorded name (a bundled model's Hub id, else ``name_or_path``).
    """
    public = public_base_name(name_or_path)
    for config in getattr(model, "peft_config", {}).values():
        config.base_model_name_or_path = public
    return public


def _auto_class(task_type: str | None) -> Any:
    names = {"SEQ_CLS": "AutoModelForSequenceClassification", "QUESTION_ANS": "AutoModelForQuestionAnswering",
             "TOKEN_CLS": "AutoModelForTokenClassification", "CAUSAL_LM": "AutoModelForCausalLM",
             "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM", "FEATURE_EXTRACTION": "AutoModel"}
    return getattr(transformers, names.get(str(task_type or ""), "AutoModel"))


def _task_config(folder: Path, base_path: str) -> Any:
    path = folder / TASK_CONFIG
    if not path.is_file():
        logger.warning("%s has no %s; using the base model's config (label names may be generic).",
                       folder, TASK_CONFIG)
        return AutoConfig.from_pretrained(base_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    return CONFIG_MAPPING[data["model_type"]].from_dict(data)


def _check_adapter_folder(folder: Path) -> None:
    if not (folder / ADAPTER_CONFIG).is_file():
        raise FileNotFoundError(f"{folder} holds no adapter ({ADAPTER_CONFIG} missing). Give the output_dir of a "
                                "finished adapter run.")
    if not (folder / ADAPTER_WEIGHTS).is_file():
        raise OSError(f"{folder} has no {ADAPTER_WEIGHTS}; tlnlp loads adapter weights from safetensors only "
                      "(pickle files can run arbitrary code).")


def load_adapter_model(folder: str | Path, *, adapter_name: str = "default", base_model: str | None = None,
                       is_trainable: bool = False, token: str | None = None) -> tuple[Any, Any]:
    """Load the base model named by an adapter folder, with the saved head and label names, plus the adapter.

    Args:
        folder: An adapter run's output folder (or a checkpoint folder of one).
        adapter_name: Name given to the adapter inside the PEFT model.
        base_model: Load this base instead of the one in ``adapter_config.json`` (same architecture).
        is_trainable: Keep the adapter trainable (to continue training); default: inference mode.
        token: Hub token for a private base model.

    Returns:
        ``(peft_model, tokenizer)``; the model is in eval mode.

    Raises:
        FileNotFoundError: No adapter in ``folder``.
        OSError: No safetensors adapter weights.
    """
    from peft import PeftConfig, PeftModel  # deferred: peft is heavy; imported when an adapter is used

    folder = Path(folder)
    _check_adapter_folder(folder)
    peft_config = PeftConfig.from_pretrained(str(folder))
    base_name = base_model or peft_config.base_model_name_or_path
    if not base_name:
        raise ValueError(f"{folder / ADAPTER_CONFIG} names no base model (base_model_name_or_path); pass "
                         "base_model=...")
    path = resolve_model_path(base_name, token=token)
    config = _task_config(folder, path)
    with quiet_load_report():
        base = _auto_class(peft_config.task_type).from_pretrained(
            path, config=config, use_safetensors=True, ignore_mismatched_sizes=True, token=token)
    model = PeftModel.from_pretrained(base, str(folder), adapter_name=adapter_name, is_trainable=is_trainable)
    if str(peft_config.peft_type).endswith("PREFIX_TUNING"):
        fix_prefix_tuning(model)
    model.eval()
    has_tokenizer = (folder / "tokenizer_config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(str(folder) if has_tokenizer else path, token=token)
    logger.info("Loaded adapter %s over %s (%s).", folder.name, base_name, type(base).__name__)
    return model, tokenizer


def merge_adapter(model: Any) -> Any:
    """Fold the active adapter into the base weights and drop the PEFT wrappers (in place).

    Args:
        model: A PEFT model whose adapter is mergeable (lora, dora, adalora, ia3, loha, lokr).

    Returns:
        The plain transformers model, with the trained head in place of the original one.

    Raises:
        ValueError: The adapter cannot be merged (prompt-learning methods).
    """
    if getattr(model, "active_peft_config", None) is not None and model.active_peft_config.is_prompt_learning:
        raise ValueError(f"{model.active_peft_config.peft_type} learns virtual tokens; there are no weights to "
                         "merge into the model.")
    return model.merge_and_unload()


def _resize_heads(model: Any, name: str, state: Mapping[str, torch.Tensor]) -> None:
    """Give the new adapter's copy of each saved head the shapes stored in its weights (other label counts)."""
    from peft.utils import ModulesToSaveWrapper  # deferred: peft is heavy; imported when an adapter is used

    for module_name, module in model.named_modules():
        if not isinstance(module, ModulesToSaveWrapper) or name not in module.modules_to_save:
            continue
        copy = module.modules_to_save[name]
        stored_prefix = module_name.replace(f".modules_to_save.{name}", "") + "."
        for param_name, param in list(copy.named_parameters()):
            key = next((k for k in state if k.startswith(stored_prefix) and k.endswith(param_name)), None)
            if key is None or state[key].shape == param.shape:
                continue
            owner = copy.get_submodule(param_name.rsplit(".", 1)[0]) if "." in param_name else copy
            leaf = param_name.rsplit(".", 1)[-1]
            setattr(owner, leaf, torch.nn.Parameter(torch.empty_like(state[key]), requires_grad=False))
            if isinstance(owner, torch.nn.Linear):
                owner.out_features, owner.in_features = owner.weight.shape


class AdapterSet:
    """Several adapters over one base model, loaded into one model; :meth:`use` switches between them.

    Each adapter keeps its own head and label names, so adapters trained on tasks with different label sets
    share the backbone and still give their own task's predictions.

    Example:
        >>> adapters = AdapterSet.load({"sentiment": "out/movie_lora", "topic": "out/trec6_lora"})
        >>> adapters.use("topic").predict(["Who wrote Hamlet?"])
    """

    def __init__(self, model: Any, tokenizer: Any, configs: dict[str, Any]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.configs = configs
        self.active = next(iter(configs))

    @classmethod
    def load(cls, folders: Mapping[str, str | Path] | Sequence[str | Path], token: str | None = None) -> AdapterSet:
        """Load every adapter folder into one model (the base is loaded once).

        Args:
            folders: ``name -> folder``, or folders (named by their folder names).
            token: Hub token for a private base model.

        Returns:
            The set, with the first adapter active.

        Raises:
            ValueError: No folders, or adapters over different base models or of different PEFT types.
        """
        from peft import PeftConfig  # deferred: peft is heavy; imported when an adapter is used
        from peft.utils import set_peft_model_state_dict

        named = dict(folders) if isinstance(folders, Mapping) else {Path(f).name: f for f in folders}
        if not named:
            raise ValueError("AdapterSet.load needs at least one adapter folder.")
        items = [(name, Path(folder)) for name, folder in named.items()]
        first_name, first = items[0]
        model, tokenizer = load_adapter_model(first, adapter_name=first_name, token=token)
        first_config = model.peft_config[first_name]
        configs = {first_name: unwrap_model(model).config.to_dict()}
        for name, folder in items[1:]:
            _check_adapter_folder(folder)
            config = PeftConfig.from_pretrained(str(folder))
            for attr in ("base_model_name_or_path", "peft_type", "task_type"):
                if getattr(config, attr) != getattr(first_config, attr):
                    raise ValueError(f"Adapter {name!r} ({folder}) has {attr}={getattr(config, attr)!r} but "
                                     f"{first_name!r} has {getattr(first_config, attr)!r}; adapters loaded together "
                                     "must share the base model, PEFT method and task type.")
            config.inference_mode = True
            model.add_adapter(name, config)
            state = load_file(str(folder / ADAPTER_WEIGHTS))
            _resize_heads(model, name, state)
            result = set_peft_model_state_dict(model, state, adapter_name=name)
            if result.unexpected_keys:
                raise ValueError(f"Adapter {name!r} ({folder}) has weights that fit no module of the base model: "
                                 f"{result.unexpected_keys[:5]}")
            task_file = folder / TASK_CONFIG
            configs[name] = (json.loads(task_file.read_text(encoding="utf-8")) if task_file.is_file()
                             else configs[first_name])
        model.eval()
        adapters = cls(model, tokenizer, configs)
        return adapters.use(first_name)

    @property
    def names(self) -> list[str]:
        """The adapter names, in load order."""
        return list(self.configs)

    def labels(self, name: str | None = None) -> list[str]:
        """Label names of an adapter (default: the active one), in class-id order."""
        id2label = self.configs[name or self.active].get("id2label") or {}
        return [id2label[key] for key in sorted(id2label, key=int)]

    def use(self, name: str) -> AdapterSet:
        """Make ``name`` the active adapter: its weights, its head and its label names.

        Args:
            name: One of :attr:`names`.

        Returns:
            ``self``, for chaining.

        Raises:
            KeyError: Unknown adapter name.
        """
        if name not in self.configs:
            raise KeyError(f"No adapter named {name!r}; loaded: {', '.join(self.configs)}.")
        self.model.set_adapter(name)
        for param in self.model.parameters():
            param.requires_grad_(False)
        config = unwrap_model(self.model).config
        labels = self.labels(name)
        if labels:
            config.id2label = dict(enumerate(labels))
            config.label2id = {label: i for i, label in enumerate(labels)}
        config.problem_type = self.configs[name].get("problem_type")
        self.active = name
        return self

    @torch.no_grad()
    def predict(self, texts: Sequence[str], batch_size: int = 32, max_length: int | None = None) -> list[dict]:
        """Classify texts with the active adapter.

        Args:
            texts: Input texts.
            batch_size: Texts per forward pass.
            max_length: Truncate inputs to this many tokens (default: the tokenizer's limit).

        Returns:
            One ``{"label": str, "score": float, "scores": {label: float}}`` per text.
        """
        labels = self.labels()
        multi = self.configs[self.active].get("problem_type") == "multi_label_classification"
        device = next(self.model.parameters()).device
        rows = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                                   max_length=max_length, return_tensors="pt").to(device)
            logits = self.model(**batch).logits.float()
            probs = torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)
            for row in probs.tolist():
                best = max(range(len(row)), key=row.__getitem__)
                rows.append({"label": labels[best], "score": row[best],
                             "scores": dict(zip(labels, row, strict=True))})
        return rows
