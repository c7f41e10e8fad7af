"""The adapter methods' flags (LoRA, DoRA, AdaLoRA, IA3, prompt/prefix/p-tuning, LoHa, LoKr).

The rank options (``lora_r``, ``lora_alpha``, ``lora_dropout``) serve every low-rank method: lora, dora, loha,
lokr (and adalora's final rank budget comes from ``adalora_target_r``). Prompt-learning methods use
``num_virtual_tokens`` and their own options. ``target_modules`` overrides the per-architecture default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ADAPTER_METHODS", "MERGEABLE_METHODS", "PROMPT_METHODS", "AdapterOptions", "check_adapter_options"]

#: Methods that insert weights into the backbone's linear layers (they can be merged into it).
MERGEABLE_METHODS = ("lora", "dora", "adalora", "ia3", "loha", "lokr")
#: Methods that learn virtual tokens in front of the input (nothing to merge).
PROMPT_METHODS = ("prompt_tuning", "prefix_tuning", "p_tuning")
#: Every adapter method, as the ``--method`` flag names it.
ADAPTER_METHODS = MERGEABLE_METHODS + PROMPT_METHODS


@dataclass
class AdapterOptions:
    """Adapter flags, part of :class:`tlnlp.methods.MethodArgs` (shared by every adapter method)."""

    lora_r: int = field(default=8, metadata={"help": "Rank of lora/dora/loha/lokr updates."})
    lora_alpha: float = field(default=16.0, metadata={"help": "Scaling of lora/dora/loha/lokr updates (alpha/r)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the adapter path (lora/dora/adalora; "
                                                                "rank dropout for loha/lokr)."})
    use_rslora: bool = field(default=False, metadata={"help": "lora/dora: rank-stabilised scaling alpha/sqrt(r)."})
    target_modules: list[str] | None = field(
        default=None, metadata={"help": "Module names (suffixes) that receive the adapter, e.g. query value. "
                                        "Default: found for the architecture (attention query/value projections; "
                                        "key/value + feed-forward output for ia3)."})
    modules_to_save: list[str] | None = field(
        default=None, metadata={"help": "Extra modules trained in full and saved with the adapter. The task head "
                                        "(classifier/score/qa_outputs...) is always added."})
    adalora_init_r: int = field(default=12, metadata={"help": "adalora: starting rank of each update."})
    adalora_target_r: int = field(default=8, metadata={"help": "adalora: average rank kept after pruning."})
    adalora_tinit: int = field(default=0, metadata={"help": "adalora: steps of warm-up before rank pruning."})
    adalora_tfinal: int = field(default=0, metadata={"help": "adalora: final steps with the rank budget fixed."})
    adalora_delta_t: int = field(default=1, metadata={"help": "adalora: steps between two budget allocations."})
    ia3_feedforward_modules: list[str] | None = field(
        default=None, metadata={"help": "ia3: which target modules are feed-forward (scaled on their input). "
                                        "Default: found for the architecture."})
    num_virtual_tokens: int = field(
        default=20, metadata={"help": "prompt_tuning/prefix_tuning/p_tuning: number of virtual tokens."})
    prompt_tuning_init_text: str | None = field(
        default=None, metadata={"help": "prompt_tuning: initialise the virtual tokens from this text's embeddings "
                                        "(default: random)."})
    prefix_projection: bool = field(
        default=False, metadata={"help": "prefix_tuning: reparameterise the prefix through a 2-layer MLP."})
    encoder_hidden_size: int | None = field(
        default=None, metadata={"help": "p_tuning (and prefix_tuning with --prefix_projection): hidden size of "
                                        "the prompt encoder (default: the model's hidden size)."})
    encoder_reparameterization_type: str = field(
        default="MLP", metadata={"help": "p_tuning: prompt encoder, MLP or LSTM."})
    merge_adapter: bool = field(
        default=False, metadata={"help": "Also write a merged full model (adapter folded into the weights) to "
                                         "<output_dir>/merged; lora/dora/adalora/ia3/loha/lokr only."})


def check_adapter_options(options: AdapterOptions) -> None:
    """Validate the adapter options of a ``MethodArgs`` (whatever its method).

    Raises:
        ValueError: An option out of range, or an adapter option set for a method that cannot use it.
    """
    method = getattr(options, "method", None)
    for name in ("lora_r", "lora_alpha", "adalora_init_r", "adalora_target_r", "adalora_delta_t",
                 "num_virtual_tokens"):
        value = getattr(options, name)
        if value is None or value <= 0:
            raise ValueError(f"{name}={value!r} must be a positive number.")
    for name in ("adalora_tinit", "adalora_tfinal"):
        if getattr(options, name) < 0:
            raise ValueError(f"{name}={getattr(options, name)!r} must be 0 or more (a number of steps).")
    if not 0 <= options.lora_dropout < 1:
        raise ValueError(f"lora_dropout={options.lora_dropout!r} must be in [0, 1).")
    if options.adalora_target_r > options.adalora_init_r:
        raise ValueError(f"adalora_target_r={options.adalora_target_r} exceeds adalora_init_r="
                         f"{options.adalora_init_r}; the budget can only shrink ranks. Lower it or raise init_r.")
    if options.encoder_hidden_size is not None and options.encoder_hidden_size <= 0:
        raise ValueError(f"encoder_hidden_size={options.encoder_hidden_size!r} must be a positive number.")
    if options.encoder_reparameterization_type not in ("MLP", "LSTM"):
        raise ValueError(f"encoder_reparameterization_type={options.encoder_reparameterization_type!r} is not "
                         "valid; choose one of: MLP, LSTM.")
    for name in ("target_modules", "modules_to_save", "ia3_feedforward_modules"):
        value = getattr(options, name)
        if value is not None and (not value or not all(isinstance(v, str) and v.strip() for v in value)):
            raise ValueError(f"{name}={value!r} must be a non-empty list of module names (e.g. query value).")
    if options.merge_adapter and method not in MERGEABLE_METHODS:
        raise ValueError(f"merge_adapter=True needs a method whose weights fold into the model "
                         f"({', '.join(MERGEABLE_METHODS)}); method={method!r} has nothing to merge. Drop "
                         "--merge_adapter or pick one of those methods.")
    if method not in ADAPTER_METHODS and options.target_modules is not None:
        raise ValueError(f"target_modules={options.target_modules!r} is set but method={method!r} is not an "
                         f"adapter method ({', '.join(ADAPTER_METHODS)}). Drop target_modules or pick one.")
