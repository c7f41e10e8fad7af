"""``CompareArgs``: what the transfer ladder runs (strategies, label budgets, seeds) and how each cell trains."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tlnlp.compare.budgets import ALL
from tlnlp.compare.executors import EXECUTORS
from tlnlp.compare.selection import SELECTION_MODES
from tlnlp.compare.strategies import TRAINED_KINDS, Strategy, get_strategy
from tlnlp.compare.vote_strategies import vote_members
from tlnlp.registry import RegistryError

__all__ = ["CompareArgs", "parse_budget", "parse_overrides"]

_DEFAULT_LRS = ["full=5e-5", "ulmfit=5e-5", "lora=5e-4", "frozen_backbone=2e-3", "from_scratch=5e-4",
                "sentence_fine_tuning=5e-5", "sentence_fine_tuning_zero_shot_head=5e-5", "staged=5e-5",
                "staged_rehearsal=5e-5", "multitask=5e-5"]


def _rate_name(strategy: str) -> str:
    """The ``learning_rates`` entry of a strategy: its name, its family's (``staged:<source>``) or its members'."""
    return strategy.removeprefix("ensemble:").split(":", 1)[0]


def _trained_parts(name: str, strategy: Strategy) -> list[str]:
    """The strategies behind ``name`` that train with a learning rate: itself, or a vote's trained members."""
    members = vote_members(name)
    if members is not None:
        return [member for member in members if get_strategy(member).kind in TRAINED_KINDS]
    return [name] if strategy.kind in TRAINED_KINDS else []


def parse_budget(value: str | int) -> int | str:
    """``"8"`` -> 8, ``"all"`` -> ``"all"``; anything else is an error naming the value and the fix."""
    text = str(value).strip().lower()
    if text == ALL:
        return ALL
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1 or str(k) != text:
        raise ValueError(f"budgets: {value!r} is not a label budget; give positive integers (labelled examples "
                         f"per class) or 'all', e.g. --budgets 8 32 128 all.")
    return k


def parse_overrides(items: list[str], field_name: str) -> dict[str, float]:
    """``["full=5e-5", "lora=5e-4"]`` -> ``{"full": 5e-05, "lora": 0.0005}``, with clear errors."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        try:
            number = float(value) if sep else math.nan
        except ValueError:
            number = math.nan
        if not sep or not name.strip() or not number > 0:
            raise ValueError(f"{field_name}: {item!r} is not 'strategy=positive number' (e.g. full=5e-5).")
        out[name.strip()] = number
    return out


@dataclass
class CompareArgs:
    """The ladder: strategies x label budgets x seeds, every cell on the same test split.

    Trained strategies see the nested, seeded k-shot training set of their budget; zero-shot cells see no
    labels; few-shot cells take their demonstrations from the same k-shot set (at most ``fewshot_shots`` per
    class).
    """

    output_dir: str = field(metadata={"help": "Where the table, plots and the per-cell cache are written."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Allow a non-empty output_dir that is not a compare run. A compare run's "
                                         "own folder is always resumed: finished cells are read from its cache."})
    strategies: list[str] = field(
        default_factory=lambda: ["zero_shot_embeddings", "feature_extraction", "full", "from_scratch"],
        metadata={"help": "Strategies to run: zero_shot_nli, zero_shot_embeddings, few_shot, from_scratch, "
                          "feature_extraction_zero_shot_head, setfit_zero_shot_head, or any --method of the "
                          "recipes (full, feature_extraction, setfit, frozen_backbone, lora, ulmfit, the adapters, "
                          "installed plugins); a method without a default rate needs --learning_rates NAME=RATE. "
                          "Transfer from other data: staged:<source>, staged_rehearsal:<source>, source_only:<source>, "
                          "multitask:<source>[+<source>...], dann:<source> (a bundled corpus name, or any "
                          "--dataset_name); staged, staged_rehearsal and source_only pool sources joined by + "
                          "into one source stage. ensemble:<strategy>: seeds of one strategy voting; "
                          "vote:<a>,<b>[,...]: different strategies voting (equal weights)."})
    budgets: list[str] = field(
        default_factory=lambda: ["8", "32", "128", ALL],
        metadata={"help": "Labelled training examples per class (nested: the 8-shot set is inside the 32-shot set), "
                          "or 'all'."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2],
                             metadata={"help": "Seeds: each draws its own k-shot sets and initialisation."})
    cell_cache_dir: str | None = field(
        default=None, metadata={"help": "Per-cell result cache (default: <output_dir>/cells). Share it between runs "
                                        "to reuse cells whose configuration is unchanged."})
    report_only: bool = field(
        default=False, metadata={"help": "Run no cell: build the table and plots from the cells already in the "
                                         "cache (e.g. while another process is still filling it)."})
    # training
    num_train_epochs: float = field(default=3.0, metadata={"help": "Epochs for large budgets (see min_train_steps)."})
    min_train_steps: int = field(
        default=60, metadata={"help": "Small budgets train for more epochs: at least this many optimisation steps."})
    max_train_epochs: float = field(default=40.0, metadata={"help": "Upper bound on epochs for small budgets."})
    learning_rates: list[str] = field(
        default_factory=lambda: list(_DEFAULT_LRS),
        metadata={"help": "Peak learning rate per trained strategy, as strategy=value (added to the defaults "
                          f"{' '.join(_DEFAULT_LRS)}; every other trained strategy needs one)."})
    batch_size: int = field(default=16, metadata={"help": "Training batch size."})
    eval_batch_size: int = field(default=64, metadata={"help": "Batch size for scoring the test split."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Linear warm-up, as a fraction of the steps."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N."})
    transfer_source_samples: int = field(
        default=2000, metadata={"help": "staged:<source> strategies: training rows of the source dataset (seeded)."})
    transfer_source_epochs: float = field(
        default=1.0, metadata={"help": "staged:<source> strategies: epochs of full fine-tuning on the source."})
    transfer_source_learning_rate: float = field(
        default=5e-5, metadata={"help": "staged:<source> strategies: learning rate on the source."})
    transfer_source_early_stopping_patience: int = field(
        default=0, metadata={"help": "staged:<source> and source_only:<source>: 0 trains every source epoch; N "
                                     "scores the source's validation split after each epoch (10% of its training "
                                     "rows when it has none), stops after N epochs without a better accuracy and "
                                     "keeps the best epoch (transfer_source_epochs is then the most it trains). "
                                     "Source labels only: no target row is read."})
    transfer_rehearsal_samples: int = field(
        default=64, metadata={"help": "staged_rehearsal:<source> strategies: source training rows mixed into the "
                                      "k-shot rows (same labels needed)."})
    setfit_max_steps: int = field(
        default=-1, metadata={"help": "Cap on the contrastive steps of the SetFit strategies (-1: the library's "
                                      "default, every pair drawn; its pairs grow with the square of the rows)."})
    ensemble_size: int = field(
        default=3, metadata={"help": "ensemble:<strategy> strategies (e.g. ensemble:full, ensemble:setfit): members "
                                     "per cell, each a cell of <strategy> on the same k-shot rows with its own seed; "
                                     "the ensemble predicts with the mean of their probabilities."})
    # baselines
    prompt_test_samples: int | None = field(
        default=None, metadata={"help": "Score few-shot and NLI zero-shot on a seeded subset of this many test rows "
                                        "(nested in the full test split); None: the whole test split."})
    fewshot_model: str = field(default="bundled:smollm2", metadata={"help": "Causal LM for few-shot prompting."})
    fewshot_shots: int = field(
        default=2, metadata={"help": "Demonstrations per class in the prompt (at most the budget), drawn from the "
                                     "cell's k-shot training set."})
    fewshot_spec: str | None = field(default=None, metadata={"help": "Prompt spec (name or YAML); default: the "
                                                                     "dataset's shipped spec."})
    nli_model: str | None = field(
        default=None, metadata={"help": "Entailment model for zero_shot_nli (a Hub NLI model, or a folder written "
                                        "by recipes/train_entailment.py)."})
    zero_shot_spec: str = field(
        default="auto", metadata={"help": "Zero-shot templates and label descriptions: a spec name of tlnlp.zeroshot "
                                          "or auto (the spec written for the dataset)."})
    # checks
    check_forgetting: bool = field(
        default=True, metadata={"help": "Measure each fine-tuned backbone's language modelling on general text "
                                        "before and after fine-tuning."})
    forgetting_text: str = field(
        default="bundled:movie_dialog", metadata={"help": "General text for the forgetting check: bundled:movie_dialog "
                                                          "or a plain text file (one text per line)."})
    forgetting_samples: int = field(default=48, metadata={"help": "Held-out texts scored by the forgetting check."})
    forgetting_max_length: int = field(default=40, metadata={"help": "Tokens per forgetting-check text."})
    negative_transfer_margin: float = field(
        default=0.0, metadata={"help": "Extra gap (beyond the sum of the seeds' std) before a strategy is flagged "
                                       "as below from-scratch or zero-shot."})
    metric: str = field(default="accuracy", metadata={"help": "Metric of the plots, flags, in-budget selection and "
                                                                "recommendation: accuracy or f1_macro."})
    # in-budget selection (tlnlp.compare.selection)
    selection: str = field(
        default="heads",
        metadata={"help": "Choices made by stratified cross-validation on each cell's own k-shot rows (never a test "
                          "label): none; heads (feature extraction's head and its pull towards the zero-shot "
                          "prototypes, on embeddings encoded once; zero-shot scored on the budget's rows: seconds); "
                          "cv (also the Trainer's learning rate and epochs and SetFit's head on per-fold bodies: "
                          "about folds x 3.5 extra trainings per cell). The choices and CV scores go into the cells, "
                          "the table and the card, and the ladder recommends a strategy per budget."})
    selection_folds: int = field(
        default=5, metadata={"help": "Most folds of the in-budget cross-validation (fewer when the smallest class "
                                     "has fewer rows; at least 2)."})
    executor: str = field(
        default="local", metadata={"help": "Where cells run: local (this machine; --workers processes) or ray (Ray "
                                           "tasks on the cluster at --ray_address, or on a Ray started here; pip "
                                           "install 'tlnlp[ray]'). Tables are the same either way."})
    workers: int = field(
        default=1, metadata={"help": "executor local: cells run at once, each in its own process pinned to its own "
                                     "CPU cores (or GPU, round robin). 1: in this process, one after another."})
    cell_threads: int | None = field(
        default=None, metadata={"help": "CPU threads per cell (local: default the cores divided by --workers; ray: "
                                        "the CPUs each task asks for, default 1)."})
    ray_address: str | None = field(
        default=None, metadata={"help": "executor ray: the cluster's address (e.g. auto, or ray://host:10001); "
                                        "unset starts Ray on this machine."})

    def __post_init__(self) -> None:
        self._check_strategies()
        self._check_executor()
        if not self.budgets:
            raise ValueError("budgets is empty; give e.g. --budgets 8 32 all.")
        self.budgets = [str(parse_budget(b)) for b in self.budgets]
        if not self.seeds:
            raise ValueError("seeds is empty; give e.g. --seeds 0 1 2.")
        if self.setfit_max_steps == 0 or self.setfit_max_steps < -1:
            raise ValueError(f"setfit_max_steps={self.setfit_max_steps!r} must be -1 (no cap) or positive.")
        for name in ("min_train_steps", "batch_size", "eval_batch_size", "fewshot_shots", "forgetting_samples",
                     "forgetting_max_length", "num_train_epochs", "max_train_epochs", "transfer_source_samples",
                     "transfer_source_epochs", "transfer_source_learning_rate", "transfer_rehearsal_samples",
                     "ensemble_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be positive.")
        if (patience := self.transfer_source_early_stopping_patience) < 0:
            raise ValueError(f"transfer_source_early_stopping_patience={patience!r} must be 0 (train every source "
                             "epoch) or positive (epochs without a better source validation accuracy before "
                             "stopping).")
        if self.prompt_test_samples is not None and self.prompt_test_samples <= 0:
            raise ValueError(f"prompt_test_samples={self.prompt_test_samples!r} must be positive (or unset).")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio={self.warmup_ratio!r} must be in [0, 1).")
        if self.selection not in SELECTION_MODES:
            raise ValueError(f"selection={self.selection!r} is not valid; choose one of: {', '.join(SELECTION_MODES)}.")
        if self.selection_folds < 2:
            raise ValueError(f"selection_folds={self.selection_folds!r} must be at least 2.")
        if self.metric not in ("accuracy", "f1_macro"):
            raise ValueError(f"metric={self.metric!r} is not valid; choose one of: accuracy, f1_macro.")
        if "zero_shot_nli" in self.strategies and not self.nli_model:
            raise ValueError("strategies includes zero_shot_nli but nli_model is not set: give an NLI model (Hub id "
                             "or a folder from recipes/train_entailment.py) with --nli_model.")

    def _check_executor(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor={self.executor!r} is not valid; choose one of: {', '.join(EXECUTORS)}.")
        if self.workers < 1:
            raise ValueError(f"workers={self.workers!r} must be at least 1 (1 runs the cells in this process).")
        if self.cell_threads is not None and self.cell_threads < 1:
            raise ValueError(f"cell_threads={self.cell_threads!r} must be at least 1 (or unset).")
        if self.ray_address and self.executor != "ray":
            raise ValueError(f"ray_address={self.ray_address!r} is set but executor={self.executor!r}; add "
                             "--executor ray to run the cells on that cluster.")

    def _check_strategies(self) -> None:
        """Every strategy is known, named once, and has a learning rate when it trains."""
        if not self.strategies:
            raise ValueError("strategies is empty; name at least one, e.g. --strategies full feature_extraction.")
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies={self.strategies!r} names a strategy twice.")
        rates = self.learning_rate_map()
        for name in self.strategies:
            try:
                strategy = get_strategy(name)
            except RegistryError as err:
                raise ValueError(f"strategies: {err}") from None
            for part in _trained_parts(name, strategy):
                if _rate_name(part) not in rates:
                    raise ValueError(f"strategies: {name!r} trains but has no learning rate; set one with "
                                     f"--learning_rates {_rate_name(part)}=5e-5 (YAML: learning_rates: "
                                     f"[{_rate_name(part)}=5e-5]).")

    def learning_rate_map(self) -> dict[str, float]:
        """Strategy -> peak learning rate (defaults for the trained strategies, then ``learning_rates``)."""
        rates = parse_overrides(_DEFAULT_LRS, "learning_rates")
        rates.update(parse_overrides(self.learning_rates, "learning_rates"))
        return rates

    def learning_rate(self, strategy: str) -> float:
        """The peak learning rate of a trained strategy (its ``learning_rates`` entry, else the default).

        Raises:
            ValueError: No rate for ``strategy``; the message names the flag that sets one.
        """
        rates = self.learning_rate_map()
        strategy = strategy if strategy in rates else _rate_name(strategy)
        if strategy not in rates:
            raise ValueError(f"learning_rates has no rate for {strategy!r}; add --learning_rates {strategy}=5e-5.")
        return rates[strategy]

    def epochs_for(self, n_train: int) -> float:
        """Epochs for a training set of ``n_train`` rows.

        ``num_train_epochs``, or more when that gives fewer than ``min_train_steps`` optimisation steps, never above
        ``max_train_epochs``.
        """
        steps_per_epoch = max(1, math.ceil(n_train / self.batch_size))
        wanted = max(self.num_train_epochs, math.ceil(self.min_train_steps / steps_per_epoch))
        return float(min(self.max_train_epochs, wanted))
