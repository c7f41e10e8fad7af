"""Results extras and card sections for a few-shot evaluation (what ``recipes/few_shot.py`` writes)."""

from __future__ import annotations

from typing import Any

from tlnlp.fewshot.evaluate import METRICS, FewShotReport, variant_name

__all__ = ["describe_method", "report_extras", "summary_table"]

_STATS = ("mean", "std", "min", "max")


def describe_method(report: FewShotReport) -> str:
    """One paragraph on how the predictions were made, for the model card."""
    spec, runs = report.spec, len(report.runs)
    scoring = "summed" if report.normalization == "sum" else "length-normalised (mean per token)"
    calibration = ("contextually calibrated (Zhao et al. 2021; content-free inputs "
                   + ", ".join(repr(c) for c in report.content_free_inputs) + ")") if report.calibrate else "raw"
    return (f"In-context few-shot prompting, no training: {report.shots} demonstration(s) per class from the "
            f"training split, written with prompt spec `{spec.name}` v{spec.version}; each label word is scored "
            f"as a continuation ({scoring} log-likelihood) and the label probabilities are {calibration}. "
            f"{runs} prompt(s) (seeds x orders of the demonstrations); the predictions and headline metrics use "
            f"their probabilities averaged over the runs, and the spread across runs is reported below.")


def summary_table(report: FewShotReport) -> str:
    """Markdown table: one row per variant, mean ± std [min, max] of each metric across runs."""
    summary = report.summary()
    lines = ["| scoring | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for variant, values in summary.items():
        cells = [f"{values[m]['mean']:.4f} ± {values[m]['std']:.4f} [{values[m]['min']:.4f}, {values[m]['max']:.4f}]"
                 for m in METRICS]
        marker = " (primary)" if variant == report.primary else ""
        lines.append(f"| {variant}{marker} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nmean ± sample std [min, max] over {len(report.runs)} run(s)."


def _runs_table(report: FewShotReport) -> str:
    variants = report.variants
    lines = ["| seed | order | prefix tokens | " + " | ".join(f"{v} accuracy" for v in variants) + " |",
             "|---|---|---|" + "---|" * len(variants)]
    for run in report.runs:
        lines.append(f"| {run.seed} | {run.order} | {run.prefix_tokens} | "
                     + " | ".join(f"{run.metrics[v]['accuracy']:.4f}" for v in variants) + " |")
    return "\n".join(lines)


def _spec_section(report: FewShotReport) -> str:
    spec = report.spec
    words = "; ".join(f"{label} -> {', '.join(repr(w) for w in spec.verbalizer[label])}" for label in report.labels)
    parts = [f"Spec `{spec.name}` version {spec.version} ({spec.source or 'given in code'})."]
    if spec.instruction:
        parts.append(f"Instruction: {spec.instruction!r}.")
    parts.append(f"Template: `{spec.template!r}`, separator {spec.separator!r}, chat template: "
                 f"{'yes' if spec.chat else 'no'}.")
    parts.append(f"Verbalizer: {words}.")
    return " ".join(parts)


def report_extras(report: FewShotReport, split: str, seconds: float) -> tuple[dict[str, Any], dict[str, str], str]:
    """Extra results (JSON-able), card sections and the method description for :func:`tlnlp.runs.finish`.

    The extra results hold ``{split}_{raw|calibrated}_{metric}_{mean|std|min|max}`` for the primary
    normalization, the spec name and version, the settings and the full report (every run) under ``few_shot``.
    """
    summary = report.summary()
    extras: dict[str, Any] = {}
    for calibrated in (False, True):
        variant = variant_name(report.normalization, calibrated)
        if variant not in summary:
            continue
        for metric in METRICS:
            for stat in _STATS:
                key = f"{split}_{'calibrated' if calibrated else 'raw'}_{metric}_{stat}"
                extras[key] = round(summary[variant][metric][stat], 6)
    rows = len(next(iter(report.runs[0].probabilities.values()))) if report.runs else 0
    extras.update({
        "prompt_spec": report.spec.name, "prompt_spec_version": report.spec.version,
        "shots_per_class": report.shots, "runs": len(report.runs), f"{split}_seconds": round(seconds, 3),
        f"{split}_examples_per_second": round(rows * max(len(report.runs), 1) / max(seconds, 1e-9), 2),
        "few_shot": report.to_dict(),
    })
    sections = {"Prompt": _spec_section(report), "Across runs": summary_table(report), "Runs": _runs_table(report)}
    return extras, sections, describe_method(report)
