"""Flags of the question-answering recipe, named as in the Hugging Face question-answering example."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["QAArgs"]


@dataclass
class QAArgs:
    """Extractive question answering: windows, answer search, null answers and the data's columns.

    ``--max_seq_length`` (the window size) is the shared data flag; the question-answering recipe sets its
    default to 384 as the Hugging Face example does.
    """

    version_2_with_negative: bool = field(
        default=False, metadata={"help": "SQuAD v2: some questions have no answer in their context, and the model "
                                         "may answer \"\" (needed when the data has unanswerable questions)."})
    doc_stride: int = field(
        default=128, metadata={"help": "Contexts longer than a window are cut into overlapping windows that "
                                       "share this many tokens."})
    pad_to_max_length: bool = field(
        default=True, metadata={"help": "Pad every window to max_seq_length, as the Hugging Face example does. The "
                                        "QA loss also covers padding positions, so with False (each batch padded "
                                        "to its longest window: faster) the loss depends on how rows are batched "
                                        "and runs on different numbers of processes differ slightly."})
    n_best_size: int = field(default=20, metadata={"help": "Candidate answers kept per window and per question."})
    max_answer_length: int = field(default=30, metadata={"help": "Longest answer, in tokens."})
    null_score_diff_threshold: float = field(
        default=0.0, metadata={"help": "SQuAD v2: answer \"\" when the null score exceeds the best span's score "
                                       "by more than this."})
    null_threshold_from_validation: bool = field(
        default=False, metadata={"help": "SQuAD v2: predict the test split with the threshold that gives the best "
                                         "F1 on validation (reported as eval_best_f1_thresh) instead of "
                                         "--null_score_diff_threshold."})
    repair_answer_starts: bool = field(
        default=False, metadata={"help": "Move an answer_start that does not point at its answer text to the nearest "
                                         "occurrence of that text in the context (the count is reported); without "
                                         "it such rows are an error."})
    id_column: str | None = field(default=None, metadata={"help": "Column holding the question id (default: 'id')."})
    question_column: str | None = field(
        default=None, metadata={"help": "Column holding the question (default: 'question')."})
    context_column: str | None = field(
        default=None, metadata={"help": "Column holding the context passage (default: 'context')."})
    answers_column: str | None = field(
        default=None, metadata={"help": "Column holding the answers as {text: [...], answer_start: [...]} "
                                        "(default: 'answers')."})

    def __post_init__(self) -> None:
        for name in ("doc_stride", "n_best_size", "max_answer_length"):
            value = getattr(self, name)
            minimum = 0 if name == "doc_stride" else 1
            if not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name}={value!r} must be an integer >= {minimum}.")
        if self.null_threshold_from_validation and not self.version_2_with_negative:
            raise ValueError("null_threshold_from_validation=True needs version_2_with_negative=True (only SQuAD v2 "
                             "predictions have a null threshold).")
