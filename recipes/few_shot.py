"""Evaluate in-context few-shot classification with a causal LM: no training, the same outputs as a fine-tuned run.

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/few_shot.py \
        --config recipes/configs/few_shot/movie_smollm2.yaml

A prompt spec (``--prompt_spec``: built-in name, YAML file, or ``auto``) writes ``--shots`` balanced demonstrations
per class before each example; every label word is scored as a continuation (summed and length-normalised
log-likelihood), raw and contextually calibrated. Each of ``--seeds`` x ``--orders`` prompts is one run; the
results hold every run and the mean, std, min and max across runs, with the spec's version. Each finished run is
stored in ``output_dir/few_shot_runs/``: an interrupted evaluation resumes when the same command is run again with
``--overwrite_output_dir`` (runs whose settings differ are scored again).
"""

from __future__ import annotations

import time
from pathlib import Path

from tlnlp.config import DataArgs, EvaluationArgs, ModelArgs, parse_args
from tlnlp.data import DataError
from tlnlp.errors import user_errors
from tlnlp.fewshot import evaluate_few_shot, load_causal_lm, resolve_spec
from tlnlp.fewshot.args import FewShotArgs
from tlnlp.fewshot.report import report_extras
from tlnlp.runs import RunContext, Scores, finish, format_metrics_table
from tlnlp.tasks import TASKS
from tlnlp.training import prepare_output_dir, setup_logging

#: The argument dataclasses this recipe parses (its flags and YAML keys), in ``main``'s order.
ARGUMENTS = (ModelArgs, DataArgs, FewShotArgs, EvaluationArgs)
#: Defaults this recipe changes (a flag or YAML key still overrides them).
DEFAULTS: dict[str, object] = {}


def main(model_args: ModelArgs, data_args: DataArgs, fs_args: FewShotArgs,
         eval_args: EvaluationArgs) -> dict[str, float]:
    """Score one split with few-shot prompts and write results, predictions, confusion matrix, config and card."""
    setup_logging()
    prepare_output_dir(eval_args)  # refuse to write over someone's files before any work
    task = TASKS.get("classification")
    data = task.load_data(data_args)
    if fs_args.split not in data.splits:
        raise DataError(f"split={fs_args.split!r} is not in {data.name}; it has: {', '.join(data.splits)}.")
    spec = resolve_spec(fs_args.prompt_spec, data.name)
    spec.check_fits(data.labels, data.splits[fs_args.split].column_names)  # before loading the model
    model, tokenizer = load_causal_lm(model_args, eval_args.torch_device())
    start = time.perf_counter()
    report = evaluate_few_shot(
        model, tokenizer, spec, data.splits["train"], data.splits[fs_args.split],
        fs_args.options(batch_size=eval_args.batch_size), labels=data.labels,
        run_dir=Path(eval_args.output_dir) / "few_shot_runs",
    )
    seconds = time.perf_counter() - start
    extra_results, sections, description = report_extras(report, fs_args.split, seconds)
    metrics = finish(RunContext(
        output_dir=eval_args.output_dir, recipe="few_shot", task=task, data=data,
        base_model=model_args.model_name_or_path, config_objects=(model_args, data_args, fs_args, eval_args),
        scores=Scores(fs_args.split, report.probabilities(), "few_shot_prompting", description),
        results=extra_results, sections=sections))
    print(format_metrics_table(metrics, title=f"\n{data.name} | {model_args.model_name_or_path} | "
                                              f"{fs_args.shots}-shot | spec {spec.name} v{spec.version}"))
    print(f"Results, predictions and card in {eval_args.output_dir}")
    return metrics


if __name__ == "__main__":
    with user_errors():
        main(*parse_args(*ARGUMENTS, defaults=DEFAULTS))
