"""Stage specs: what each stage of a chain trains on and how, parsed and checked before any work.

A stage is written as comma-separated ``key=value`` pairs (``dataset=bundled:trec6,method=full,epochs=1``) or, in
YAML, as a mapping. Its keys are the data flags of the classification recipe (:class:`tlnlp.config.DataArgs`:
``dataset`` / ``dataset_name``, ``train_file``, ``train_samples_per_class``, ``max_train_samples``...), the method
flags (:class:`tlnlp.methods.MethodArgs`: ``method``, ``lora_r``...), the training budget of
:class:`StageOptions` (``epochs`` / ``num_train_epochs``, ``learning_rate``, ``max_steps``...), ``new_head`` and
``name``. Each stage is parsed by :func:`tlnlp.config.parse_args` itself, so values are typed and checked exactly
as the same flags of a recipe are.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, resolved_config
from tlnlp.config.items import item_argv, key_value_pairs, parse_item
from tlnlp.errors import UserError
from tlnlp.methods import METHODS, method_args_class
from tlnlp.methods.adapters import MERGEABLE_METHODS, PROMPT_METHODS
from tlnlp.registry import RegistryError
from tlnlp.training.stages import refuse_long_text_chunk

__all__ = ["ALIASES", "CHAIN_KEYS", "TRAINING_KEYS", "StageOptions", "StageSpec", "StageSpecError",
           "build_stage_specs", "parse_stage_item", "stage_keys", "stage_training_args"]

#: Short names a stage may use for a flag.
ALIASES = {"dataset": "dataset_name", "epochs": "num_train_epochs"}
#: Settings of the whole chain (top-level flags or YAML keys), never of one stage.
CHAIN_KEYS = ("stages", "rehearsal_samples", "baseline")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class StageSpecError(UserError, ValueError):
    """A stage (or the chain) is written wrongly; the message names the stage, the key, the value and the fix."""


@dataclass
class StageOptions:
    """A stage's keys beyond its data and method: its folder name, its head, and its training budget.

    A training key left out takes the chain's value (the top-level flag of the same name).
    """

    name: str | None = field(default=None, metadata={"help": "Folder name part: stage<i>_<name> (default: the "
                                                               "dataset's name)."})
    new_head: bool = field(default=False, metadata={"help": "Start this stage with a new classification head even "
                                                              "when its labels are the previous stage's."})
    num_train_epochs: float | None = field(default=None, metadata={"help": "Epochs of this stage (alias: epochs)."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate of this stage."})
    max_steps: int | None = field(default=None, metadata={"help": "Optimisation steps (overrides epochs when > 0)."})
    per_device_train_batch_size: int | None = field(default=None, metadata={"help": "Training batch per device."})
    gradient_accumulation_steps: int | None = field(default=None, metadata={"help": "Batches per update."})
    warmup_steps: float | None = field(default=None, metadata={"help": "Warm-up steps (or a fraction < 1)."})
    weight_decay: float | None = field(default=None, metadata={"help": "AdamW weight decay."})
    eval_strategy: str | None = field(default=None, metadata={"help": "no, steps or epoch."})
    eval_steps: float | None = field(default=None, metadata={"help": "Steps between evaluations."})
    save_strategy: str | None = field(default=None, metadata={"help": "no, steps or epoch (checkpoints)."})
    save_steps: float | None = field(default=None, metadata={"help": "Steps between checkpoints."})
    logging_steps: float | None = field(default=None, metadata={"help": "Steps between log lines."})


#: The training keys a stage may set (the rest of ``TrainingArguments`` is the chain's).
TRAINING_KEYS = tuple(f.name for f in dataclasses.fields(StageOptions) if f.name not in ("name", "new_head"))


@dataclass
class StageSpec:
    """One stage, resolved: its data and method arguments, its training overrides and its folder name.

    Attributes:
        index: Position in the chain, from 1.
        name: The stage's folder inside the chain's ``output_dir`` (``stage<i>_<name>``).
        data_args: The stage's data (a recipe's ``DataArgs``).
        method_args: The stage's ``MethodArgs``.
        training: ``TrainingArguments`` values this stage sets (the rest are the chain's).
        new_head: Start with a new head even when the labels are unchanged.
        raw: The stage as written (for the records).
    """

    index: int
    name: str
    data_args: DataArgs
    method_args: Any
    training: dict[str, Any] = field(default_factory=dict)
    new_head: bool = False
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        """The stage's ``--method``."""
        return str(self.method_args.method)

    @property
    def dataset(self) -> str:
        """The data source as written (dataset name or training file)."""
        return str(self.data_args.dataset_name or self.data_args.train_file)

    def signature(self, train_args: TrainingArgs) -> dict[str, Any]:
        """What decides this stage's result (data, method, budget, head): a resumed chain must match it."""
        budget = {key: self.training.get(key, getattr(train_args, key)) for key in
                  ("num_train_epochs", "learning_rate", "max_steps", "per_device_train_batch_size",
                   "gradient_accumulation_steps", "warmup_steps", "weight_decay")}
        return {"data": resolved_config(self.data_args), "method": resolved_config(self.method_args),
                "training": {**budget, "seed": train_args.seed}, "new_head": self.new_head}


def stage_keys() -> list[str]:
    """Every key a stage accepts: data flags, method flags, :class:`StageOptions` and the aliases."""
    names = {f.name for dtype in (DataArgs, method_args_class(), StageOptions) for f in dataclasses.fields(dtype)}
    return sorted(names | set(ALIASES))


def _check_key(key: str, where: str, known: Sequence[str]) -> None:
    if key in known:
        return
    chain = {f.name for dtype in (ModelArgs, TrainingArgs) for f in dataclasses.fields(dtype)} | set(CHAIN_KEYS)
    if key in chain:
        raise StageSpecError(f"{where}: {key!r} is a setting of the whole chain, not of one stage: give it once as "
                             f"a top-level flag or YAML key (--{key}). A stage starts from the previous stage's "
                             "model; the chain's first model is --model_name_or_path.")
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise StageSpecError(f"{where}: unknown key {key!r}.{hint} A stage takes the data and method flags of "
                         f"recipes/classification.py plus {', '.join(dataclasses.asdict(StageOptions()))}, "
                         f"epochs and dataset (see --help).")


def parse_stage_item(item: Any, position: int) -> dict[str, Any]:
    """One item of ``--stages`` -> its keys (aliases resolved), checked for unknown, repeated and missing keys.

    Args:
        item: ``"key=value,key=value"`` or a mapping (YAML).
        position: The item's index in ``stages`` (0-based).

    Returns:
        ``{flag name: value}``; values stay as written (strings, or YAML's types).

    Raises:
        StageSpecError: Not key=value, an unknown or repeated key, or no data source.
    """
    where = f"stages[{position}] (stage {position + 1})"
    known = stage_keys()
    found: dict[str, Any] = {}
    for key, value in key_value_pairs(item, where, "dataset=bundled:trec6,method=full,epochs=1", StageSpecError):
        _check_key(key, where, known)
        name = ALIASES.get(key, key)
        if name in found:
            raise StageSpecError(f"{where}: {key!r} is given twice; keep one value.")
        found[name] = value
    if found.get("dataset_name") in (None, "") and found.get("train_file") in (None, ""):
        raise StageSpecError(f"{where}: no data: give dataset=<name> (a bundled corpus such as "
                             "bundled:movie_sentiment, a Hub dataset or a local dataset folder) or "
                             "train_file=<csv/json/jsonl/parquet file>.")
    return found


def _list_keys() -> set[str]:
    return {f.name for dtype in (DataArgs, method_args_class()) for f in dataclasses.fields(dtype)
            if "list" in str(f.type)}


def _check_method(method: str, where: str, last: bool) -> None:
    try:
        found = METHODS.get(method)
    except RegistryError as err:
        raise StageSpecError(f"{where}: method={method!r}: {err}") from None
    trainer_methods = [n for n in METHODS.names() if METHODS.get(n).trains_with_trainer]
    if not found.trains_with_trainer:
        raise StageSpecError(f"{where}: method={method!r} fits a head on sentence embeddings without the Trainer; "
                             f"a stage trains with the Trainer. Pick one of: {', '.join(trainer_methods)}.")
    if method in PROMPT_METHODS and not last:
        raise StageSpecError(f"{where}: method={method!r} learns virtual tokens that do not fold into the model, "
                             "so the next stage cannot start from it. Use it for the last stage only, or pick "
                             f"one of {', '.join(MERGEABLE_METHODS)} (merged into the model for the next stage).")


def _folder_name(index: int, name: str | None, data_args: DataArgs, where: str) -> str:
    if name is not None and not _NAME.match(name):
        raise StageSpecError(f"{where}: name={name!r} must be letters, digits, '_', '-' or '.' (a folder name).")
    source = str(data_args.dataset_name or Path(str(data_args.train_file)).stem)
    base = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", source.split(":")[-1].rstrip("/").split("/")[-1]).strip("_.")
    return f"stage{index}_{base or 'data'}"


def _build_one(raw: dict[str, Any], position: int, defaults: dict[str, Any], last: bool) -> StageSpec:
    where = f"stages[{position}] (stage {position + 1}: {raw.get('dataset_name') or raw.get('train_file')})"
    method = str(raw.get("method", defaults["method"]))
    _check_method(method, where, last)
    flags = dict(raw)
    if method in MERGEABLE_METHODS and not last:  # the next stage starts from <stage>/merged
        if str(flags.get("merge_adapter", True)).lower() in ("false", "0", "no"):
            raise StageSpecError(f"{where}: merge_adapter=false, but the next stage starts from this stage's "
                                 "merged model (adapter folded into the weights). Drop merge_adapter.")
        flags["merge_adapter"] = True
    data_args, method_args, options = parse_item((DataArgs, method_args_class(), StageOptions),
                                                 item_argv(flags, frozenset(_list_keys())), defaults, where,
                                                 "stage", StageSpecError)
    refuse_long_text_chunk(data_args, "staged")
    explicit = getattr(data_args, "_tlnlp_explicit", {})
    training = {key: getattr(options, key) for key in TRAINING_KEYS if key in explicit}
    return StageSpec(index=position + 1, name=_folder_name(position + 1, options.name, data_args, where),
                     data_args=data_args, method_args=method_args, training=training, new_head=options.new_head,
                     raw={str(k): v for k, v in raw.items()})


def build_stage_specs(items: Sequence[Any], method_args: Any,
                      data_defaults: Mapping[str, Any] | None = None) -> list[StageSpec]:
    """Parse and check every stage of a chain, before any data is loaded or any model trained.

    Args:
        items: The chain's ``stages`` (strings or mappings, see :func:`parse_stage_item`).
        method_args: The chain's ``MethodArgs``: a stage's method and method options default to these.
        data_defaults: Data flags every stage takes unless it sets its own (e.g. ``max_seq_length``).

    Returns:
        One :class:`StageSpec` per stage, in order.

    Raises:
        StageSpecError: Any stage written wrongly; the message names the stage, key, value and fix.
    """
    if not items:
        raise StageSpecError("stages is empty; give at least one stage, e.g. --stages "
                             "dataset=bundled:amazon_sentiment,epochs=1 dataset=bundled:movie_sentiment")
    raws = [parse_stage_item(item, position) for position, item in enumerate(items)]
    defaults = {**dict(data_defaults or {}), **resolved_config(method_args)}
    specs = [_build_one(raw, i, defaults, i == len(raws) - 1) for i, raw in enumerate(raws)]
    seen: dict[str, int] = {}
    for spec in specs:
        if spec.name in seen:  # pragma: no cover - the index prefix keeps folder names apart
            raise StageSpecError(f"Stages {seen[spec.name]} and {spec.index} share the folder {spec.name!r}.")
        seen[spec.name] = spec.index
    return specs


def stage_training_args(base: TrainingArgs, spec: StageSpec, output_dir: str | Path,
                        explicit: Mapping[str, Any] | None = None) -> TrainingArgs:
    """The chain's ``TrainingArgs`` with the stage's overrides, writing into ``output_dir``.

    The stage folder belongs to the chain (the chain's ``output_dir`` was checked before any work), so it may be
    written over; nothing is pushed from a stage (the chain pushes its final model once, with the full card).

    Args:
        base: The chain's training arguments.
        spec: The stage.
        output_dir: The stage's folder.
        explicit: Settings given explicitly for the chain (kept, with the stage's, for ``run_config.yaml``).

    Returns:
        A new ``TrainingArgs``.
    """
    args = dataclasses.replace(base, output_dir=str(output_dir), overwrite_output_dir=True,
                               resume_from_checkpoint=None, push_to_hub=False, **spec.training)
    given = {k: v for k, v in dict(explicit or {}).items() if k not in ("resume_from_checkpoint", "push_to_hub")}
    object.__setattr__(args, "_tlnlp_explicit", {**given, **spec.training, "output_dir": str(output_dir)})
    return args
