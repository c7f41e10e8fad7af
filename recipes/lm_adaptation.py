"""Adapt a pretrained backbone to a target domain: continue its pretraining on unlabelled text (ULMFiT stage 2).

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/lm_adaptation.py \
        --config recipes/configs/lm_adaptation/trec6_minilm.yaml

Masked LM (15% masking) for encoders, causal LM for decoders, with ULMFiT's discriminative rates and slanted
triangular schedule (``--method ulmfit`` without gradual unfreezing by default). Text comes from any source: a
bundled corpus or Hub dataset (its text column, labels ignored), a csv/jsonl/... file's text column, or a plain
``.txt`` file (one text per line). Held-out (pseudo-)perplexity is reported before and after. The output folder
is an ordinary model folder: pass it to ``recipes/classification.py --model_name_or_path``.

``--hp_search optuna`` searches the LM training's settings first: each trial trains on the training text and is
scored by its loss on the held-out text (``eval_loss``, minimised, unless ``--metric_for_best_model`` names
another), and the best values then train the adapted model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import set_seed

from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.errors import user_errors
from tlnlp.methods import MethodArgs
from tlnlp.runs import LmRunOptions, format_metrics_table, run_lm_adaptation
from tlnlp.search import HpSearchArgs, prepare_search_output_dir, search_hook
from tlnlp.tasks import TASKS
from tlnlp.tasks.language_modeling.model import LM_OBJECTIVES
from tlnlp.training import refuse_evaluation_only, setup_logging

#: Recipe defaults: the paper's LM fine-tuning (discriminative rates + slanted triangular, no unfreezing).
DEFAULTS = {"method": "ulmfit", "gradual_unfreezing": "off", "eval_strategy": "no", "save_strategy": "epoch"}


@dataclass
class LmArgs:
    """Language-modelling options."""

    lm_objective: str = field(default="auto", metadata={
        "help": "auto (masked LM when the architecture has one, else causal), mlm or clm."})
    mlm_probability: float = field(default=0.15, metadata={"help": "Share of tokens masked (masked LM)."})
    perplexity_max_texts: int = field(default=500, metadata={
        "help": "Held-out texts scored before and after (pseudo-perplexity costs one pass per token)."})

    def __post_init__(self) -> None:
        if self.lm_objective not in LM_OBJECTIVES:
            raise ValueError(f"lm_objective={self.lm_objective!r} is not valid; choose one of: "
                             f"{', '.join(LM_OBJECTIVES)}.")
        if not 0 < self.mlm_probability < 1:
            raise ValueError(f"mlm_probability={self.mlm_probability!r} must be in (0, 1); BERT uses 0.15.")
        if self.perplexity_max_texts < 1:
            raise ValueError(f"perplexity_max_texts={self.perplexity_max_texts!r} must be a positive number.")


#: The argument dataclasses this recipe parses (its flags and YAML keys), in ``main``'s order.
ARGUMENTS = (ModelArgs, DataArgs, MethodArgs, TrainingArgs, LmArgs, HpSearchArgs)


def main(model_args: ModelArgs, data_args: DataArgs, method_args: MethodArgs, train_args: TrainingArgs,
         lm_args: LmArgs, hp_args: HpSearchArgs | None = None) -> dict[str, float]:
    """Adapt the model to the text (searching first with ``--hp_search``); train metrics, perplexity before/after."""
    setup_logging(train_args)
    refuse_evaluation_only(train_args, 'lm_adaptation')  # this recipe always trains
    resume = prepare_search_output_dir(train_args, hp_args, method_args)  # an interrupted search continues
    set_seed(train_args.seed)
    text = TASKS.get("language-modeling").load_data(data_args)
    objects = (model_args, data_args, method_args, train_args, lm_args)
    metrics = run_lm_adaptation(model_args, text, method_args, train_args, LmRunOptions(
        objective=lm_args.lm_objective, max_seq_length=data_args.max_seq_length,
        mlm_probability=lm_args.mlm_probability, perplexity_max_texts=lm_args.perplexity_max_texts,
        resume_from_checkpoint=resume, config_objects=objects,
        search=search_hook(hp_args, "lm_adaptation", objects)))  # trials scored by held-out eval_loss
    if train_args.process_index == 0:
        print(format_metrics_table(metrics, title=f"\n{text.name} | {model_args.model_name_or_path} | LM adaptation"))
        print(f"Held-out {'pseudo-' if metrics.get('lm_objective_mlm') else ''}perplexity: before "
              f"{metrics['perplexity_before']:.2f}, after {metrics['perplexity_after']:.2f}")
        print(f"Adapted model in {train_args.output_dir}: use it with recipes/classification.py "
              f"--model_name_or_path {train_args.output_dir}")
    return metrics


if __name__ == "__main__":
    with user_errors():
        main(*parse_args(*ARGUMENTS, defaults=DEFAULTS))
