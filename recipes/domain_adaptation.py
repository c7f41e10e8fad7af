"""Unsupervised domain adaptation (DANN): a classifier trained on a labelled source, adapted to unlabelled target text.

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/domain_adaptation.py \
        --config recipes/configs/domain_adaptation/amazon_to_movie_minilm.yaml

The source is any data the classification recipe reads (``--dataset_name``, ``--train_file``...). The target is
``--target_dataset`` (a bundled corpus or Hub dataset; its labels, if any, only score its test split and its
validation split, as ``eval_target_*``) or ``--target_text_file`` (one text per line, or a table with
``--target_text_column``). Every batch holds source
rows and as many target rows; a domain classifier on the representation the classification head reads learns
to tell them apart, and a gradient-reversal layer makes the encoder work against it with weight λ, which ramps
from 0 to ``--domain_loss_weight`` (0: the source-only baseline). Works with any Trainer method (``--method full``,
``--method lora``...); ``--resume_from_checkpoint last`` resumes an interrupted run. Every flag overrides the YAML.

``--hp_search optuna`` searches first when the target has a labelled validation split (e.g.
``--target_dataset bundled:movie_sentiment``): each trial trains DANN as the run does and is scored on that split
(``eval_target_accuracy``, or the ``target_*`` metric ``--metric_for_best_model`` names), ``--hp_space`` may hold
``domain_loss_weight`` and the other ``domain_*`` options, and ``hp_search/best_config.yaml`` reruns the best trial.
Without such a split the search is refused: the source's validation split would reward dropping the adaptation.

Writes into ``--output_dir`` what a classification run writes (the model, which ``tlnlp.load_pipeline`` loads,
results, predictions, ``run_config.yaml``, the card) plus ``domain_adaptation_results.json`` (source and target
test metrics, the proxy A-distance before and after, the λ schedule), ``target_predictions.jsonl`` and a
"Domain adaptation" section on the card.
"""

from __future__ import annotations

import functools

from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.domain import (
    SEARCH_METRIC,
    SEARCH_RANGES,
    SEARCHABLE,
    DomainArgs,
    DomainSearch,
    format_summary,
    run_domain_adaptation,
)
from tlnlp.errors import user_errors
from tlnlp.methods import MethodArgs
from tlnlp.runs import format_metrics_table
from tlnlp.search import (
    HpSearchArgs,
    RecipeOptions,
    check_search,
    prepare_search_output_dir,
    refuse_search,
    search_hook,
)
from tlnlp.training import refuse_evaluation_only, refuse_long_text_chunk, setup_logging

#: The argument dataclasses this recipe parses (its flags and YAML keys), in ``main``'s order.
ARGUMENTS = (ModelArgs, DataArgs, MethodArgs, DomainArgs, TrainingArgs, HpSearchArgs)
#: Defaults this recipe changes (a flag or YAML key still overrides them).
DEFAULTS: dict[str, object] = {}


def search(hp_args: HpSearchArgs | None, config_objects: tuple, method_args: MethodArgs,
           domain_args: DomainArgs) -> DomainSearch | None:
    """The search's hooks (None without ``--hp_search``): trials scored on the target's labelled validation split."""
    run = search_hook(hp_args, "domain_adaptation", config_objects, default_metric=SEARCH_METRIC,
                      options=RecipeOptions(domain_args, SEARCHABLE, SEARCH_RANGES))
    if run is None:
        return None
    return DomainSearch(run=run, refuse=functools.partial(refuse_search, hp_args, "domain_adaptation"),
                        prepare_output_dir=functools.partial(prepare_search_output_dir, hp_args=hp_args,
                                                             method_args=method_args))


def main(model_args: ModelArgs, data_args: DataArgs, method_args: MethodArgs, domain_args: DomainArgs,
         train_args: TrainingArgs, hp_args: HpSearchArgs | None = None) -> dict[str, float]:
    """Train and adapt, evaluate on both domains and save; returns every metric (``target_test_*`` included)."""
    setup_logging(train_args)
    refuse_evaluation_only(train_args, 'domain_adaptation')  # this recipe always trains
    refuse_long_text_chunk(data_args, "domain_adaptation")  # and scores rows cut to max_seq_length
    check_search(hp_args, train_args, method_args)  # with --hp_search: one process, the back end, before any work
    objects = (model_args, data_args, method_args, domain_args, train_args)
    result = run_domain_adaptation(*objects, search=search(hp_args, objects, method_args, domain_args))
    if train_args.process_index == 0:
        print(format_metrics_table(result.metrics, title=f"\n{result.report.source} -> {result.report.target.name} | "
                                                         f"{model_args.model_name_or_path} | "
                                                         f"method={method_args.method}"))
        print(format_summary(result.report))
        print(f"Model, metrics, predictions and card in {train_args.output_dir}")
    return result.metrics


if __name__ == "__main__":
    with user_errors():
        main(*parse_args(*ARGUMENTS, defaults=DEFAULTS))
