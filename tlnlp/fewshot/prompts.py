"""Assemble few-shot prompts from a spec and turn them into token ids, in pieces that share one prefix.

A prompt is ``prefix + query + continuation``:

* ``prefix``: the instruction and the demonstrations, each followed by the spec's separator (the same for every
  example, so its key/value cache can be computed once);
* ``query``: the example written with the template up to the label (``Text: ...`` newline ``Sentiment:``);
* ``continuation``: the whitespace before the label plus one of the label's words (``" positive"``).

The three pieces are tokenized separately, the same way for every scoring path, so shared-prefix and naive
scoring see identical token ids. The continuation is tokenized after the template's fixed text before the
label, so a word is split into the tokens it gets in context.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tlnlp.fewshot.spec import PromptSpec, PromptSpecError

__all__ = [
    "EncodedPrompts",
    "encode_prompts",
    "render_demonstration",
    "render_prefix",
    "render_prompt",
    "render_query",
    "truncate_field",
]

logger = logging.getLogger(__name__)

_SENTINEL = "\u2063TLNLP-QUERY\u2063"


def truncate_field(value: str, limit: int | None) -> str:
    """Cut ``value`` to at most ``limit`` characters at a word boundary, marking the cut with ``...``."""
    if limit is None or len(value) <= limit:
        return value
    cut = value[:limit].rsplit(" ", 1)[0] if " " in value[:limit] else value[:limit]
    return cut.rstrip() + " ..."


def _fill(spec: PromptSpec, row: Mapping[str, Any]) -> str:
    values = {name: truncate_field(str(row[name]), spec.max_field_chars) for name in spec.fields}
    return spec.query_template.format(**values)


def render_query(spec: PromptSpec, row: Mapping[str, Any]) -> str:
    """The example written with the template up to (not including) the label and the whitespace before it."""
    return _fill(spec, row)


def render_demonstration(spec: PromptSpec, row: Mapping[str, Any], label: str) -> str:
    """A demonstration: the filled template with the label's first word."""
    return _fill(spec, row) + spec.answer_gap + spec.verbalizer[label][0]


def render_prefix(spec: PromptSpec, demonstrations: Sequence[tuple[Mapping[str, Any], str]]) -> str:
    """Instruction and demonstrations, each followed by the separator; empty when there are neither."""
    parts = ([spec.instruction] if spec.instruction else []) + [
        render_demonstration(spec, row, label) for row, label in demonstrations]
    return "".join(part + spec.separator for part in parts)


def _chat_parts(tokenizer: Any, spec: PromptSpec) -> tuple[str, str]:
    """Chat-template text before and after a single user turn (the latter ends with the assistant's header)."""
    if not getattr(tokenizer, "chat_template", None):
        raise PromptSpecError(f"Prompt spec {spec.name!r} sets chat: true, but the tokenizer has no chat template. "
                              "Set chat: false in the spec, or use an instruct model that has one.")
    text = tokenizer.apply_chat_template([{"role": "user", "content": _SENTINEL}], tokenize=False,
                                         add_generation_prompt=True)
    head, _, tail = text.partition(_SENTINEL)
    return head, tail


def render_prompt(spec: PromptSpec, demonstrations: Sequence[tuple[Mapping[str, Any], str]],
                  row: Mapping[str, Any], label: str | None = None, tokenizer: Any = None) -> str:
    """The whole prompt as one string (for display and tests), ending with ``label``'s first word when given.

    With ``spec.chat`` the instruction, demonstrations and query form one user turn of the tokenizer's chat
    template and the label word is the assistant's answer.
    """
    prefix, query = render_prefix(spec, demonstrations), render_query(spec, row)
    answer = "" if label is None else spec.verbalizer[label][0]
    if spec.chat:
        head, tail = _chat_parts(tokenizer, spec)
        return head + prefix + query + tail + answer
    return prefix + query + (spec.answer_gap + answer if label is not None else "")


@dataclass
class EncodedPrompts:
    """Token ids of one prompt configuration (fixed demonstrations) for many examples and every label word.

    Attributes:
        prefix: Ids of the shared prefix (with the tokenizer's BOS, if it adds one).
        contexts: Ids of each example's query.
        continuations: Ids of each candidate (label word with its leading whitespace).
        candidate_labels: Class id of each candidate.
        prefix_text: The prefix as text.
    """

    prefix: list[int]
    contexts: list[list[int]]
    continuations: list[list[int]]
    candidate_labels: list[int]
    prefix_text: str


def _ids(tokenizer: Any, text: str, special: bool = False) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def _continuation_ids(tokenizer: Any, before: str, text: str) -> list[int]:
    """Tokens of ``text`` as they come after ``before`` (the fixed text that precedes it in every prompt)."""
    whole, head = _ids(tokenizer, before + text), _ids(tokenizer, before)
    if before and whole[: len(head)] == head and len(whole) > len(head):
        return whole[len(head):]
    return _ids(tokenizer, text)


def _literal_tail(template: str) -> str:
    """The template's fixed text after its last field (e.g. a newline and ``Sentiment:``)."""
    end = template.rfind("}")
    return template[end + 1:] if end >= 0 else template


def encode_prompts(tokenizer: Any, spec: PromptSpec, demonstrations: Sequence[tuple[Mapping[str, Any], str]],
                   rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> EncodedPrompts:
    """Tokenize the shared prefix, each row's query and every label word of the verbalizer.

    Args:
        tokenizer: A Hugging Face tokenizer.
        spec: The prompt spec (already checked against the data with :meth:`PromptSpec.check_fits`).
        demonstrations: ``(row, class name)`` pairs in prompt order.
        rows: The examples to score (mappings holding the spec's fields).
        labels: Class names in class-id order.

    Returns:
        The ids, with one candidate per verbalizer word.
    """
    prefix_text = render_prefix(spec, demonstrations)
    if spec.chat:
        head, tail = _chat_parts(tokenizer, spec)
        prefix = _ids(tokenizer, head + prefix_text)
        contexts = [_ids(tokenizer, render_query(spec, row) + tail) for row in rows]
        before, gap = tail, ""
    else:
        prefix = _ids(tokenizer, prefix_text, special=True)
        contexts = [_ids(tokenizer, render_query(spec, row)) for row in rows]
        before, gap = _literal_tail(spec.query_template), spec.answer_gap
    continuations, owners = [], []
    for label_id, label in enumerate(labels):
        for word in spec.verbalizer[label]:
            continuations.append(_continuation_ids(tokenizer, before, gap + word))
            owners.append(label_id)
    empty = [i for i, ids in enumerate(contexts) if not ids]
    if empty or any(not ids for ids in continuations):
        raise PromptSpecError(f"Prompt spec {spec.name!r}: an example or label word tokenizes to nothing "
                              f"(rows {empty[:5]}); check the template and verbalizer.")
    return EncodedPrompts(prefix=prefix, contexts=contexts, continuations=continuations, candidate_labels=owners,
                          prefix_text=prefix_text)
