"""Argument dataclasses shared by the recipes. Every field is a flag (``--name``) and a YAML key.

The transfer method's flags are :class:`tlnlp.methods.MethodArgs`, composed from the registered methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from tlnlp.config.hub_token import require_token
from tlnlp.config.precision import choose_bf16

__all__ = ["CPU_DROPOUT_CHOICES", "DataArgs", "EvaluationArgs", "ModelArgs", "TrainingArgs"]

#: Values of ``--cpu_dropout`` (:mod:`tlnlp.models.cpu_dropout`).
CPU_DROPOUT_CHOICES = ("fast", "torch")


def _check_choice(field_name: str, value: object, choices: list[str]) -> None:
    if value not in choices:
        raise ValueError(f"{field_name}={value!r} is not valid; choose one of: {', '.join(choices)}.")


def _check_positive(field_name: str, value: float | int | None, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        unset = ", or leave it out for the default" if allow_none else ""
        raise ValueError(f"{field_name}={value!r} must be a positive number. Fix: give --{field_name} a value above "
                         f"0{unset}.")


@dataclass
class ModelArgs:
    """Which pretrained backbone to start from and how to load it."""

    model_name_or_path: str = field(
        default="bundled:minilm",
        metadata={"help": "Hub id, local folder, or a bundled model (bundled:minilm, bundled:smollm2). "
                          "A Hub id whose weights are bundled resolves to the bundled copy when offline."},
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer, if not the model's own."})
    model_revision: str = field(
        default="main", metadata={"aliases": ["--revision"],
                                  "help": "Hub revision of the model (branch, tag or commit). Alias: --revision."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded models are cached."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Run modelling code from the Hub repo. Off by default: only enable it "
                                         "for repositories you trust."})
    token: str | None = field(
        default=None, metadata={"help": "Hub token; prefer HF_TOKEN or `hf auth login`. Never written anywhere."})
    dtype: str | None = field(
        default=None, metadata={"aliases": ["--torch_dtype"],
                                "help": "Load weights in this dtype: auto, float32, bfloat16, float16 (transformers' "
                                        "`dtype`). Alias: --torch_dtype."})
    init_from_scratch: bool = field(
        default=False, metadata={"help": "Same architecture with random weights (no transfer): the reference that "
                                         "shows what pretraining buys. The tokenizer still comes from the model."})

    def __post_init__(self) -> None:
        if not self.model_name_or_path or not str(self.model_name_or_path).strip():
            raise ValueError("model_name_or_path is empty; give a Hub id, a local folder or bundled:minilm.")
        if self.dtype is not None:
            _check_choice("dtype", self.dtype, ["auto", "float32", "bfloat16", "float16"])


@dataclass
class DataArgs:
    """Where the data comes from, which columns hold what, and how much of it to use."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "Hub dataset name, or a bundled corpus (bundled:movie_sentiment, ...)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Hub dataset configuration."})
    train_file: str | None = field(default=None, metadata={"help": "csv/tsv/json/jsonl/parquet training file."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation file (same formats)."})
    test_file: str | None = field(default=None, metadata={"help": "Test file (same formats)."})
    text_column: str | None = field(
        default=None, metadata={"aliases": ["--text_column_names"],
                                "help": "Column holding the text (default: 'text', else 'sentence'). Alias: "
                                        "--text_column_names, where 'a,b' names the text and text-pair columns."})
    text_pair_column: str | None = field(
        default=None, metadata={"help": "Second text column for sentence-pair tasks."})
    label_column: str | None = field(
        default=None, metadata={"aliases": ["--label_column_name"],
                                "help": "Column holding the label (default: 'label'). Alias: --label_column_name."})
    max_seq_length: int = field(
        default=128, metadata={"help": "Tokens per input, special tokens included; --long_text says what happens to "
                                       "longer texts."})
    long_text: str = field(
        default="truncate",
        metadata={"help": "Texts longer than max_seq_length. truncate: cut them (the log and all_results.json say how "
                          "many rows of each split were cut: <split>_truncated_rows). chunk (classification with the "
                          "Trainer): sliding windows of max_seq_length tokens that overlap by long_text_stride; each "
                          "window trains with its row's label, and a row's logits are the mean of its windows' logits "
                          "in evaluation, predictions and load_pipeline."})
    long_text_stride: int | None = field(
        default=None, metadata={"help": "--long_text chunk: tokens that neighbouring windows share (default: a "
                                        "quarter of max_seq_length); under half of max_seq_length."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep the first N training rows (after shuffling with the seed)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep N validation rows."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Keep N test rows."})
    train_samples_per_class: int | None = field(
        default=None, metadata={"help": "Stratified k-shot: keep k training examples per class (seeded)."})
    validation_split_percentage: float = field(
        default=10.0, metadata={"help": "When only a training set is given: percent held out for validation."})
    test_split_percentage: float = field(
        default=10.0, metadata={"help": "When only a training set is given: percent held out for test."})
    split_seed: int = field(default=42, metadata={"help": "Seed for splitting and sampling the data."})
    label_separator: str | None = field(
        default=None, metadata={"help": "Multi-label data in csv/tsv: split the label cell on this string."})
    multi_label_threshold: float = field(
        default=0.5, metadata={"help": "Multi-label: a label is predicted when its sigmoid exceeds this."})

    def __post_init__(self) -> None:
        self._split_text_column_names()
        if self.dataset_name is None and self.train_file is None:
            raise ValueError("No data given: set --dataset_name (a Hub dataset or bundled:<name>, e.g. "
                             "bundled:movie_sentiment) or --train_file (csv/tsv/json/jsonl/parquet).")
        if self.dataset_name is not None and self.train_file is not None:
            raise ValueError(f"Both dataset_name={self.dataset_name!r} and train_file={self.train_file!r} are set; "
                             "give only one source.")
        for name in ("max_seq_length", "max_train_samples", "max_eval_samples", "max_predict_samples",
                     "train_samples_per_class"):
            _check_positive(name, getattr(self, name))
        for name in ("validation_split_percentage", "test_split_percentage"):
            value = getattr(self, name)
            if not 0 <= value < 50:
                raise ValueError(f"{name}={value!r} must be a percentage in [0, 50). Fix: give --{name} a value "
                                 "from 0 up to 49 (e.g. 10).")
        if not 0 < self.multi_label_threshold < 1:
            raise ValueError(f"multi_label_threshold={self.multi_label_threshold!r} must be in (0, 1). Fix: give "
                             "--multi_label_threshold a probability strictly between 0 and 1 (e.g. 0.5).")
        self._check_long_text()

    def _check_long_text(self) -> None:
        """``long_text`` is a known mode; ``long_text_stride`` (a quarter of the window by default) fits a window."""
        _check_choice("long_text", self.long_text, ["truncate", "chunk"])
        if self.long_text == "chunk" and self.long_text_stride is None:
            self.long_text_stride = self.max_seq_length // 4
        stride = self.long_text_stride
        if stride is not None and not (isinstance(stride, int) and 0 <= stride and 2 * stride < self.max_seq_length):
            raise ValueError(f"long_text_stride={stride!r} must be a whole number of tokens from 0 to under half of "
                             f"max_seq_length={self.max_seq_length}; e.g. long_text_stride="
                             f"{self.max_seq_length // 4}.")

    def _split_text_column_names(self) -> None:
        """``text_column="a,b"`` (as ``--text_column_names`` of the HF example names two columns): text and pair."""
        if self.text_column is None or "," not in self.text_column:
            return
        names = [name.strip() for name in self.text_column.split(",")]
        if len(names) != 2 or not all(names) or self.text_pair_column is not None:
            raise ValueError(f"text_column={self.text_column!r}: give one column, or two as 'text,pair' (the text and "
                             "the text-pair column) with text_pair_column unset.")
        self.text_column, self.text_pair_column = names


def _tracker_list(report_to: None | str | list[str]) -> None | str | list[str]:
    """``report_to`` with comma-separated names split (``"tensorboard,mlflow"`` or a list holding such strings)."""
    items = [report_to] if isinstance(report_to, str) else report_to
    if items is None or not any("," in str(item) for item in items):
        return report_to
    return [name.strip() for item in items for name in str(item).split(",") if name.strip()]


@dataclass
class TrainingArgs(TrainingArguments):
    """``transformers.TrainingArguments`` unchanged, plus the output-folder safety flag of the HF example scripts.

    tlnlp changes a few defaults (length-grouped batches, TensorBoard, per-epoch evaluation); see
    :data:`tlnlp.config.TLNLP_TRAINING_DEFAULTS`. Any of them can be set back with its flag or YAML key.
    """

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Allow writing into a non-empty output_dir (its previous files may be replaced). Without "
                          "it a non-empty output_dir is refused, unless --resume_from_checkpoint is given."},
    )
    bf16: str = field(  # type: ignore[assignment]  # TrainingArguments' bool, plus "auto"
        default="auto",
        metadata={"nargs": "?", "const": "true",
                  "help": "bf16 autocast: auto (default: on for a CUDA device with bf16, or a CPU whose measured bf16 "
                          "matmul beats fp32; off otherwise, and the log says which and why), true, or false. "
                          "Weights stay fp32."},
    )

    cpu_dropout: str = field(
        default="fast",
        metadata={"help": "Dropout masks when training on a CPU: fast (default: 16-bit random numbers, four per draw "
                          "of torch's seeded generator, about a third of torch's cost; keep probability exact to "
                          "1/65536; the model's dropout modules and its sdpa attention dropout) or torch (torch's "
                          "own kernel, the random stream of a stock Trainer). GPUs always use torch's kernel."},
    )

    report_to: None | str | list[str] = field(  # TrainingArguments' field, taking several names on the CLI
        default="none",
        metadata={"nargs": "+",
                  "help": "Trackers to report to, one or more (tlnlp's default: tensorboard): --report_to tensorboard "
                          "mlflow, or tensorboard,mlflow; all for every installed one, none for no tracker."})

    def __post_init__(self) -> None:
        _check_choice("cpu_dropout", self.cpu_dropout, list(CPU_DROPOUT_CHOICES))
        self._resolve_bf16()
        self.report_to = _tracker_list(self.report_to)
        super().__post_init__()
        if self.push_to_hub:  # refuse before any work, not after training (HubTokenError is a ValueError)
            require_token(self.hub_token)

    def _resolve_bf16(self) -> None:
        """Turn ``bf16`` (auto, true, false, or a bool) into the bool TrainingArguments expects; auto measures."""
        choice = str(self.bf16).strip().lower()
        if choice in ("true", "1", "yes"):
            self.bf16 = True
        elif choice in ("false", "0", "no", "none"):
            self.bf16 = False
        elif choice == "auto":
            decided = choose_bf16(use_cpu=bool(self.use_cpu), fp16=bool(self.fp16))
            self.bf16 = decided.bf16
            object.__setattr__(self, "_tlnlp_bf16_reason", decided.reason)  # logged by tlnlp.training.setup_logging
        else:
            raise ValueError(f"bf16={self.bf16!r} is not valid; choose auto, true or false.")
        if self.bf16 and not self.use_cpu:
            import torch  # deferred: only a bf16 run asks whether a GPU is there

            # bf16 autocast on a machine without CUDA runs on the CPU; TrainingArguments wants that said
            self.use_cpu = not torch.cuda.is_available()

    def __getstate__(self) -> dict:
        """Pickled copies (the Trainer's ``checkpoint-*/training_args.bin``) never hold the Hub token."""
        state = dict(self.__dict__)
        state["hub_token"] = None
        return state


@dataclass
class EvaluationArgs:
    """Where an evaluation-only run (zero-shot, few-shot) writes, and how it batches and seeds its work."""

    output_dir: str | None = field(default=None, metadata={"help": "Folder for the results, predictions and card."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Allow writing into a non-empty output_dir (its files may be replaced)."})
    seed: int = field(default=42, metadata={"help": "Seed for sampling (demonstrations, negatives...)."})
    batch_size: int = field(default=32, metadata={"help": "Sequences scored per forward pass."})
    device: str = field(default="auto", metadata={"help": "auto (CUDA when available), cpu, cuda, cuda:N, mps."})

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ValueError("output_dir is not set; give --output_dir (a folder for the results).")
        _check_positive("batch_size", self.batch_size, allow_none=False)
        if self.device not in ("auto", "cpu", "cuda", "mps") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device={self.device!r} is not valid; choose auto, cpu, cuda, cuda:N or mps.")

    @property
    def resume_from_checkpoint(self) -> None:
        """Evaluation runs have no checkpoints (lets :func:`tlnlp.training.prepare_output_dir` treat both alike)."""
        return None

    def torch_device(self) -> str:
        """The device to run on: ``device``, with ``auto`` resolved to CUDA (then MPS) when available, else CPU."""
        if self.device != "auto":
            return self.device
        import torch  # deferred: torch is heavy; only this method needs it

        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
