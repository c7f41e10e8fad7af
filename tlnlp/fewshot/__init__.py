"""Few-shot prompting with causal LMs: prompt specs as data, k-shot sampling, scoring, calibration.

Example:
    >>> from tlnlp.fewshot import SPECS, FewShotOptions, evaluate_few_shot, load_causal_lm
    >>> model, tokenizer = load_causal_lm(ModelArgs(model_name_or_path="bundled:smollm2"))
    >>> report = evaluate_few_shot(model, tokenizer, SPECS.get("sentiment"), data.splits["train"],
    ...                            data.splits["test"], FewShotOptions(shots=4, seeds=[0, 1, 2], orders=2))
    >>> report.summary()["sum_calibrated"]["accuracy"]  # mean, std, min, max over the 6 runs
"""

from tlnlp.fewshot.calibration import (
    DEFAULT_CONTENT_FREE,
    NORMALIZATIONS,
    contextual_calibration,
    label_log_scores,
    softmax,
)
from tlnlp.fewshot.evaluate import METRICS, FewShotReport, FewShotRun, evaluate_few_shot, variant_name
from tlnlp.fewshot.lm import load_causal_lm
from tlnlp.fewshot.options import FewShotOptions
from tlnlp.fewshot.prompts import EncodedPrompts, encode_prompts, render_prefix, render_prompt, render_query
from tlnlp.fewshot.sampling import sample_demonstrations
from tlnlp.fewshot.scoring import score_continuations
from tlnlp.fewshot.spec import (
    SPECS,
    PromptSpec,
    PromptSpecError,
    load_spec,
    resolve_spec,
    spec_for_dataset,
    spec_from_dict,
)

__all__ = [
    "DEFAULT_CONTENT_FREE",
    "METRICS",
    "NORMALIZATIONS",
    "SPECS",
    "EncodedPrompts",
    "FewShotOptions",
    "FewShotReport",
    "FewShotRun",
    "PromptSpec",
    "PromptSpecError",
    "contextual_calibration",
    "encode_prompts",
    "evaluate_few_shot",
    "label_log_scores",
    "load_causal_lm",
    "load_spec",
    "render_prefix",
    "render_prompt",
    "render_query",
    "resolve_spec",
    "sample_demonstrations",
    "score_continuations",
    "softmax",
    "spec_for_dataset",
    "spec_from_dict",
    "variant_name",
]
