"""What a domain-adaptation run reports: its results file, the card's "Domain adaptation" section, a summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tlnlp.domain.distance import ADistance
from tlnlp.domain.target import TargetData

__all__ = ["RESULTS_FILE", "SECTION_TITLE", "DomainReport", "domain_section", "format_summary"]

RESULTS_FILE = "domain_adaptation_results.json"
SECTION_TITLE = "Domain adaptation"
_SHOWN = (("accuracy", "accuracy"), ("f1_macro", "F1 (macro)"), ("mcc", "MCC"), ("samples", "rows"))


def _strip(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {k[len(prefix):]: float(v) for k, v in metrics.items()
            if k.startswith(prefix) and isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclass
class DomainReport:
    """Everything a domain-adaptation run measured, for its results file, card section and summary.

    Attributes:
        source: The source's name.
        source_rows: Labelled source training rows.
        target: The target.
        settings: λ_max, γ, the domain classifier's size, dropout and learning rate, the steps and the last λ.
        source_test: ``source_test_*`` metrics of the final model.
        target_test: ``target_test_*`` metrics (labelled targets), else empty.
        before: The proxy A-distance before training, or None (skipped).
        after: The proxy A-distance after training, or None.
        seconds: Wall time from the start to the end of the measurements.
        target_validation: ``eval_target_*`` metrics (a target with a labelled validation split), else empty.
        searched: Whether a hyperparameter search chose the settings by the target validation score.
    """

    source: str
    source_rows: int
    target: TargetData
    settings: dict[str, Any]
    source_test: dict[str, float] = field(default_factory=dict)
    target_test: dict[str, float] = field(default_factory=dict)
    before: ADistance | None = None
    after: ADistance | None = None
    seconds: float = 0.0
    target_validation: dict[str, float] = field(default_factory=dict)
    searched: bool = False

    def numbers(self) -> dict[str, float]:
        """The flat numbers a run returns and writes into ``all_results.json``."""
        found: dict[str, float] = {**self.target_validation, **self.target_test}
        if self.before is not None and self.after is not None:
            found.update({"a_distance_before": self.before.value, "a_distance_after": self.after.value})
        found["dann_final_lambda"] = float(self.settings.get("final_lambda", 0.0))
        return found

    def to_dict(self) -> dict[str, Any]:
        """The results file's content."""
        distance = None
        if self.before is not None and self.after is not None:
            distance = {"before": self.before.to_dict(), "after": self.after.to_dict(),
                        "change": self.after.value - self.before.value}
        return {"source": {"name": self.source, "train_rows": self.source_rows},
                "target": self.target.describe(), "adversary": dict(self.settings), "a_distance": distance,
                "source_test": _strip(self.source_test, "source_test_"),
                "target_test": _strip(self.target_test, "target_test_") or None,
                "target_validation": _strip(self.target_validation, "eval_target_") or None,
                "seconds": round(self.seconds, 1)}


def _value(metrics: dict[str, float], key: str) -> str:
    value = metrics.get(key)
    if value is None:
        return "—"
    return f"{int(value)}" if key.endswith("samples") else f"{value:.4f}"


def _metrics_table(report: DomainReport) -> str:
    validation = bool(report.target_validation)
    rows = ["| | source test | target test |" + (" target validation |" if validation else ""),
            "|---|---|---|" + ("---|" if validation else "")]
    for key, label in _SHOWN:
        extra = f" {_value(report.target_validation, 'eval_target_' + key)} |" if validation else ""
        rows.append(f"| {label} | {_value(report.source_test, 'source_test_' + key)} | "
                    f"{_value(report.target_test, 'target_test_' + key)} |{extra}")
    return "\n".join(rows)


def _distance_text(report: DomainReport) -> str:
    if report.before is None or report.after is None:
        return "Proxy A-distance: not measured (`--a_distance_samples 0`)."
    return (f"Proxy A-distance between the two domains' representations (a linear classifier tells "
            f"{report.before.rows_per_domain} source test rows from as many held-out target texts, trained on one "
            f"half and scored on the other: d_A = 2(1 − 2·error); 2 means fully separable, 0 indistinguishable): "
            f"**{report.before.value:.3f} before training, {report.after.value:.3f} after** "
            f"({report.after.value - report.before.value:+.3f}).")


def domain_section(report: DomainReport) -> str:
    """The markdown of the card's "Domain adaptation" section (no heading)."""
    s, target = report.settings, report.target
    baseline = s["max_lambda"] == 0
    labels = (f"its labels were used only to score its test split ({len(target.test)} rows)"
              if target.test is not None else f"no target test metrics: {target.note}")
    if report.target_validation:
        rows = int(report.target_validation.get("eval_target_samples", 0))
        labels = labels.replace("its test split", f"its test split and its validation split ({rows} rows)")
        if report.searched:
            labels += "; the hyperparameter search chose the settings by the validation split's score"
    kind = ("Source-only baseline (λ_max = 0): the setting of DANN with the adversary switched off" if baseline
            else "Unsupervised domain adaptation with DANN (Ganin et al. 2016)")
    return "\n\n".join([
        f"{kind}. Labelled source: `{report.source}` ({report.source_rows} training rows). Unlabelled target: "
        f"`{target.name}` ({len(target.texts)} texts; {labels}).",
        f"A gradient-reversal layer and a domain classifier (MLP with {s['hidden_size']} hidden units, learning "
        f"rate {s['learning_rate']:g}) sit on the representation the classification head reads. The domain "
        "classifier learns from the domain loss; the encoder receives that loss's gradient times −λ, so it learns "
        "features the domain classifier cannot separate while the classification loss (source rows only) keeps "
        "them useful. Every batch holds source rows and as many target rows (a seeded pairing).",
        f"λ schedule: λ = {s['max_lambda']:g} · (2 / (1 + exp(−{s['gamma']:g}·p)) − 1), p = step / "
        f"{s['steps']} steps; λ of the last step: {s['final_lambda']:.3f}.",
        _metrics_table(report),
        _distance_text(report),
    ])


def format_summary(report: DomainReport) -> str:
    """A few lines of plain text on a finished run, for printing."""
    src, tgt = report.source_test.get("source_test_accuracy"), report.target_test.get("target_test_accuracy")
    lines = [f"Domain adaptation {report.source} -> {report.target.name} (λ_max={report.settings['max_lambda']:g}, "
             f"{report.seconds:.0f} s)",
             f"  source test accuracy {src:.4f}" if src is not None else "  source test: not scored",
             f"  target test accuracy {tgt:.4f}" if tgt is not None else f"  target test: none ({report.target.note})"]
    if report.before is not None and report.after is not None:
        lines.append(f"  proxy A-distance {report.before.value:.3f} before -> {report.after.value:.3f} after")
    return "\n".join(lines)
