"""Train a label-entailment model (an NLI-style cross-encoder) from labelled classification data, offline.

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/train_entailment.py \
        --config recipes/configs/train_entailment/trec6_sms_minilm.yaml

Every example of ``--train_datasets`` becomes an entailment pair with its label's hypothesis ("This example is
spam.") and ``--num_negatives`` not-entailment pairs with other labels (Yin et al. 2019). The saved model names
its entailment class, so ``pipeline("zero-shot-classification")``, ``recipes/zero_shot.py --strategy nli`` and
``tlnlp.zeroshot.score_nli`` all accept it; ``--zero_shot_eval_datasets`` scores it on tasks whose labels it
never saw. Every ``TrainingArguments`` flag works unchanged. ``--hp_search optuna`` searches the training settings
first, each trial scored on the validation pairs (``eval_accuracy`` unless ``--metric_for_best_model`` says
otherwise; never on the test pairs or the unseen tasks); the best values then train the model.
"""

from __future__ import annotations

from tlnlp.config import ModelArgs, TrainingArgs, parse_args
from tlnlp.errors import user_errors
from tlnlp.methods import MethodArgs
from tlnlp.runs import format_metrics_table
from tlnlp.search import HpSearchArgs, prepare_search_output_dir, search_hook
from tlnlp.training import refuse_evaluation_only, setup_logging
from tlnlp.zeroshot import EntailmentArgs, run_entailment_training, zero_shot_errors

#: The argument dataclasses this recipe parses (its flags and YAML keys), in ``main``'s order.
ARGUMENTS = (ModelArgs, EntailmentArgs, MethodArgs, TrainingArgs, HpSearchArgs)
#: Defaults this recipe changes (a flag or YAML key still overrides them).
DEFAULTS: dict[str, object] = {}


def main(model_args: ModelArgs, entail_args: EntailmentArgs, method_args: MethodArgs,
         train_args: TrainingArgs, hp_args: HpSearchArgs | None = None) -> dict[str, float]:
    """Build pairs, (search,) train, save the model and its outputs; returns every metric (pairs and zero-shot)."""
    setup_logging(train_args)
    refuse_evaluation_only(train_args, 'train_entailment')  # this recipe always trains
    objects = (model_args, entail_args, method_args, train_args)
    metrics = run_entailment_training(
        model_args, entail_args, method_args, train_args,
        prepare=lambda args: prepare_search_output_dir(args, hp_args, method_args),  # a search continues
        search=search_hook(hp_args, "train_entailment", objects))
    if train_args.process_index == 0:
        print(format_metrics_table(metrics, title=f"\nlabel entailment | {' + '.join(entail_args.train_datasets)}"
                                                  f" | {model_args.model_name_or_path}"))
        for key, value in metrics.items():
            if key.startswith("zeroshot_"):
                print(f"{key:<40} {value:.4f}")
        print(f"Entailment model, metrics and card in {train_args.output_dir}")
    return metrics


if __name__ == "__main__":
    with user_errors(), zero_shot_errors():
        main(*parse_args(*ARGUMENTS, defaults=DEFAULTS))
