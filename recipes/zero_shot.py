"""Evaluate a zero-shot baseline on any labelled dataset: no training, the same outputs as a fine-tuned run.

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/zero_shot.py \
        --config recipes/configs/zero_shot/bbc_news_embedding_minilm.yaml

``--strategy nli`` scores (text, hypothesis) pairs with an NLI model: a Hub model such as
``facebook/bart-large-mnli``, a local folder, or one trained by ``recipes/train_entailment.py``.
``--strategy embedding`` compares mean-pooled embeddings of texts and label descriptions (``bundled:minilm`` as is).
Templates and label descriptions come from a versioned spec (``--spec``); its version is written with the metrics.
"""

from __future__ import annotations

import time

from tlnlp.config import DataArgs, EvaluationArgs, ModelArgs, parse_args
from tlnlp.errors import user_errors
from tlnlp.runs import RunContext, Scores, finish, format_metrics_table
from tlnlp.tasks import TASKS
from tlnlp.training import prepare_output_dir, setup_logging
from tlnlp.zeroshot import (
    ScoringOptions,
    ZeroShotArgs,
    ZeroShotError,
    load_zero_shot_model,
    resolve_spec,
    zero_shot_errors,
    zero_shot_probabilities,
)

_DESCRIPTIONS = {
    "nli": "Zero-shot NLI: each label becomes a hypothesis (template filled with the label's description) and an "
           "entailment model scores every (text, hypothesis) pair; no example of this dataset was trained on.",
    "embedding": "Zero-shot embedding similarity: cosine similarity of the sentence embeddings of the text and of "
                 "each label's description (pooled as the section below says); no training at all.",
}


#: The argument dataclasses this recipe parses (its flags and YAML keys), in ``main``'s order.
ARGUMENTS = (ModelArgs, DataArgs, ZeroShotArgs, EvaluationArgs)
#: Defaults this recipe changes (a flag or YAML key still overrides them).
DEFAULTS: dict[str, object] = {}


def main(model_args: ModelArgs, data_args: DataArgs, zs_args: ZeroShotArgs,
         eval_args: EvaluationArgs) -> dict[str, float]:
    """Score one split zero-shot and write results, predictions, confusion matrix, config and card."""
    setup_logging()
    prepare_output_dir(eval_args)  # refuse to write over someone's files before any work
    task = TASKS.get("classification")
    data = task.load_data(data_args)
    if zs_args.split not in data.splits:
        raise ZeroShotError(f"split={zs_args.split!r} is not in {data.name}; it has: {', '.join(data.splits)}.")
    spec = resolve_spec(zs_args.spec, data.name, zs_args.strategy, zs_args.spec_file, zs_args.hypothesis_template)
    model, tokenizer = load_zero_shot_model(zs_args.strategy, model_args, eval_args.torch_device())
    texts = data.splits[zs_args.split]["text"]
    start = time.perf_counter()
    options = ScoringOptions(batch_size=eval_args.batch_size, max_length=data_args.max_seq_length,
                             multi_label=data.multi_label, entailment_index=zs_args.entailment_index,
                             temperature=zs_args.embedding_temperature, show_progress=True)
    probs = zero_shot_probabilities(zs_args.strategy, model, tokenizer, texts, data.labels, spec, options)
    seconds = time.perf_counter() - start
    method = f"zero_shot_{zs_args.strategy}"
    metrics = finish(RunContext(
        output_dir=eval_args.output_dir, recipe="zero_shot", task=task, data=data,
        base_model=model_args.model_name_or_path, config_objects=(model_args, data_args, zs_args, eval_args),
        scores=Scores(zs_args.split, probs, method, _DESCRIPTIONS[zs_args.strategy], data_args.multi_label_threshold),
        results={"spec": spec.as_dict(), "spec_version": spec.version, "strategy": zs_args.strategy,
                 f"{zs_args.split}_seconds": round(seconds, 3),
                 f"{zs_args.split}_examples_per_second": round(len(texts) / max(seconds, 1e-9), 2)},
        sections={"Zero-shot spec": f"Spec `{spec.name}` version {spec.version}; templates: "
                  + ", ".join(f"`{t}`" for t in spec.templates) + "; label descriptions: "
                  + (", ".join(f"{k} -> {v}" for k, v in spec.label_descriptions.items()) or "class names"),
                  **({"Sentence embeddings": model.tlnlp_pooling} if hasattr(model, "tlnlp_pooling") else {})}))
    print(format_metrics_table(metrics, title=f"\n{data.name} | {model_args.model_name_or_path} | {method} | "
                                              f"spec {spec.name} v{spec.version}"))
    print(f"Results, predictions and card in {eval_args.output_dir}")
    return metrics


if __name__ == "__main__":
    with user_errors(), zero_shot_errors():
        main(*parse_args(*ARGUMENTS, defaults=DEFAULTS))
