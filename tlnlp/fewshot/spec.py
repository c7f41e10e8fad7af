r"""Few-shot prompt specs as versioned YAML data: instruction, example template, separator, verbalizer.

A spec file holds one spec::

    name: sentiment
    version: 1.0.0
    description: Binary sentiment of a sentence or review.
    datasets: [bundled:movie_sentiment]          # picked for these datasets when the spec is "auto"
    instruction: Classify the sentiment of each review as positive or negative.   # optional
    template: "Review: {text}\nSentiment: {label}"   # named fields from the data's columns; {label} last
    separator: "\n\n"                          # between the instruction and the demonstrations
    verbalizer:                                 # class name -> word(s); several words and multi-token words
      negative: negative                        #   are allowed (the first word is used in demonstrations)
      positive: [positive, good]
    chat: false                                 # wrap the prompt in the tokenizer's chat template
    max_field_chars: null                       # cut longer field values (at a word boundary)

The built-in specs ship in ``tlnlp/fewshot/specs/``; a user's file of the same shape is loaded with
:func:`load_spec` (or ``--prompt_spec path/to/spec.yaml``). Every result reports the spec's ``version``.
"""

from __future__ import annotations

import dataclasses
import difflib
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tlnlp.data.validation import DataError
from tlnlp.registry import Registry

__all__ = [
    "FIELDS",
    "SPECS",
    "PromptSpec",
    "PromptSpecError",
    "load_spec",
    "resolve_spec",
    "spec_for_dataset",
    "spec_from_dict",
]

#: Template fields a spec may use: the canonical data columns.
FIELDS = ("text", "text_pair")
_SPEC_DIR = Path(__file__).with_name("specs")
_REQUIRED = ("version", "template", "verbalizer")
_OPTIONAL = ("name", "description", "datasets", "instruction", "separator", "chat", "max_field_chars")
_EXAMPLES = {"version": "version: 1.0.0", "template": 'template: "Review: {text}\\nSentiment: {label}"',
             "verbalizer": "verbalizer: {negative: bad, positive: good}"}


class PromptSpecError(DataError):
    """A prompt spec is malformed, or does not fit the data (a field or label it names is missing)."""


@dataclass(frozen=True)
class PromptSpec:
    """How examples, demonstrations and label words are written into a prompt.

    Attributes:
        name: Spec name (file stem when the file gives none).
        version: Version of the prompt; reported with every metric.
        template: Example template with named fields (``{text}``, ``{text_pair}``) and ``{label}`` at the end.
        verbalizer: Class name -> the words that stand for it (first word used in demonstrations).
        instruction: Text put once before the demonstrations, or empty.
        separator: Between the instruction and each demonstration, and before the query.
        description: One line about the spec.
        datasets: Dataset names the spec is picked for when a recipe asks for ``auto``.
        chat: Wrap the prompt as one user turn of the tokenizer's chat template (instruct models).
        max_field_chars: Field values longer than this are cut at a word boundary (None: never).
        source: Where the spec was read from.
    """

    name: str
    version: str
    template: str
    verbalizer: Mapping[str, tuple[str, ...]]
    instruction: str = ""
    separator: str = "\n\n"
    description: str = ""
    datasets: tuple[str, ...] = ()
    chat: bool = False
    max_field_chars: int | None = None
    source: str = field(default="", compare=False)

    @property
    def fields(self) -> list[str]:
        """The data fields the template uses, in order of appearance (``label`` excluded)."""
        names = [f for _, f, _, _ in string.Formatter().parse(self.template) if f is not None]
        return [f for f in dict.fromkeys(names) if f != "label"]

    @property
    def query_template(self) -> str:
        """The template up to ``{label}``, trailing whitespace removed (it belongs to the label's continuation)."""
        head = self.template[: self.template.rindex("{label}")]
        return head.rstrip()

    @property
    def answer_gap(self) -> str:
        """The whitespace between the query and the label word (e.g. one space)."""
        head = self.template[: self.template.rindex("{label}")]
        return head[len(head.rstrip()):]

    def check_fits(self, labels: Sequence[str], columns: Sequence[str]) -> None:
        """Check that the data has every field the template uses and that the verbalizer covers exactly its labels.

        Args:
            labels: The data's class names.
            columns: The data's columns (``text``, ``label`` and maybe ``text_pair``).

        Raises:
            PromptSpecError: A missing field, a class without words, or words for a class the data lacks.
        """
        for name in self.fields:
            if name not in columns:
                raise PromptSpecError(
                    f"Prompt spec {self.name!r} ({self.source or 'built-in'}): template field {{{name}}} is not a "
                    f"column of the data (columns: {', '.join(c for c in columns if c != 'label')}). Fix the "
                    f"template, or load data with that column (e.g. --text_pair_column for {{text_pair}}).")
        missing = [label for label in labels if label not in self.verbalizer]
        if missing:
            raise PromptSpecError(
                f"Prompt spec {self.name!r} ({self.source or 'built-in'}): the verbalizer has no words for "
                f"label(s) {missing}. Add them under `verbalizer:` (e.g. `{missing[0]}: <word>`); the data's labels "
                f"are {list(labels)}.")
        extra = [label for label in self.verbalizer if label not in labels]
        if extra:
            raise PromptSpecError(
                f"Prompt spec {self.name!r} ({self.source or 'built-in'}): the verbalizer names label(s) {extra} "
                f"that the data does not have (its labels are {list(labels)}). Remove them or fix their names.")


def _fail(source: str, message: str) -> PromptSpecError:
    return PromptSpecError(f"Prompt spec {source}: {message}")


def _check_keys(raw: Mapping[str, Any], source: str) -> None:
    known = set(_REQUIRED) | set(_OPTIONAL)
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise _fail(source, f"unknown key {key!r}.{hint} Keys: {', '.join(_REQUIRED + _OPTIONAL)}.")
    for key in _REQUIRED:
        if key not in raw or raw[key] in (None, ""):
            raise _fail(source, f"missing required key {key!r} (required: {', '.join(_REQUIRED)}). Fix: add it, "
                                f"e.g. `{_EXAMPLES[key]}`.")


def _check_template(template: Any, source: str) -> str:
    if not isinstance(template, str):
        raise _fail(source, f"template={template!r} must be a string such as 'Review: {{text}}\\nSentiment: "
                            "{label}'.")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise _fail(source, f"template={template!r} cannot be parsed ({err}); write fields as {{text}} and a "
                            "literal brace as {{{{ or }}}}.") from None
    names = [name for _, name, spec, conv in parsed if name is not None]
    for name in names:
        if name not in FIELDS and name != "label":
            close = difflib.get_close_matches(name, [*FIELDS, "label"], n=1)
            hint = f" Did you mean {{{close[0]}}}?" if close else ""
            raise _fail(source, f"template field {{{name}}} is unknown.{hint} Fields: {{text}}, {{text_pair}} and "
                                "{label} (the data's canonical columns).")
    if names.count("label") != 1 or not template.rstrip().endswith("{label}"):
        raise _fail(source, f"template={template!r} must end with {{label}}, once: the label word is the "
                            "continuation the model scores.")
    if not [n for n in names if n != "label"]:
        raise _fail(source, f"template={template!r} has no data field; add {{text}}.")
    if template.rstrip() != template:
        raise _fail(source, f"template={template!r} has text after {{label}}; end it with {{label}}.")
    return template


def _check_verbalizer(raw: Any, source: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping) or not raw:
        raise _fail(source, f"verbalizer={raw!r} must map each class name to a word or a list of words.")
    words: dict[str, tuple[str, ...]] = {}
    for label, value in raw.items():
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(w, str) and w.strip() for w in items):
            raise _fail(source, f"verbalizer[{label!r}]={value!r} must be a non-empty word or list of non-empty "
                                "words.")
        words[str(label)] = tuple(w.strip() for w in items)
    seen: dict[str, str] = {}
    for label, items in words.items():
        for word in items:
            if word in seen and seen[word] != label:
                raise _fail(source, f"the word {word!r} stands for both {seen[word]!r} and {label!r}; give each "
                                    "class its own words.")
            seen[word] = label
    return words


def spec_from_dict(raw: Mapping[str, Any], source: str, default_name: str = "custom") -> PromptSpec:
    """Build and validate a :class:`PromptSpec` from a parsed YAML mapping (see the module docstring)."""
    if not isinstance(raw, Mapping):
        raise _fail(source, f"must be a YAML mapping of keys ({', '.join(_REQUIRED)}, ...), got "
                            f"{type(raw).__name__}.")
    _check_keys(raw, source)
    max_chars = raw.get("max_field_chars")
    if max_chars is not None and (not isinstance(max_chars, int) or max_chars < 1):
        raise _fail(source, f"max_field_chars={max_chars!r} must be a positive integer or null.")
    for key in ("instruction", "separator", "description"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise _fail(source, f"{key}={raw[key]!r} must be a string.")
    if not isinstance(raw.get("chat", False), bool):
        raise _fail(source, f"chat={raw['chat']!r} must be true or false.")
    datasets = raw.get("datasets") or []
    if isinstance(datasets, str) or not all(isinstance(d, str) for d in datasets):
        raise _fail(source, f"datasets={datasets!r} must be a list of dataset names.")
    return PromptSpec(
        name=str(raw.get("name") or default_name), version=str(raw["version"]),
        template=_check_template(raw["template"], source), verbalizer=_check_verbalizer(raw["verbalizer"], source),
        instruction=(raw.get("instruction") or "").strip(),
        separator="\n\n" if raw.get("separator") is None else raw["separator"],
        description=raw.get("description") or "", datasets=tuple(datasets), chat=bool(raw.get("chat", False)),
        max_field_chars=max_chars, source=source,
    )


def load_spec(path: str | Path) -> PromptSpec:
    """Read and validate a prompt spec YAML file.

    Raises:
        PromptSpecError: The file is missing, is not valid YAML, or the spec is malformed.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise PromptSpecError(f"Prompt spec file {str(file)!r} does not exist. Give a built-in spec name "
                              f"({', '.join(SPECS.names())}) or a YAML file.")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise PromptSpecError(f"Prompt spec {file}: not valid YAML ({err}).") from None
    return spec_from_dict(raw, str(file), default_name=file.stem)


def _builtin() -> Registry[PromptSpec]:
    registry: Registry[PromptSpec] = Registry("prompt spec", "--prompt_spec")
    for file in sorted(_SPEC_DIR.glob("*.yaml")):
        spec = dataclasses.replace(load_spec(file), source=f"built-in {file.name}")
        registry.register(spec.name, spec)
    return registry


#: The built-in prompt specs, by name.
SPECS: Registry[PromptSpec] = _builtin()


def spec_for_dataset(dataset_name: str | None) -> PromptSpec | None:
    """The built-in spec written for ``dataset_name`` (listed in its ``datasets``), if any."""
    for name in SPECS.names():
        if dataset_name is not None and dataset_name in SPECS.get(name).datasets:
            return SPECS.get(name)
    return None


def resolve_spec(name_or_path: str | None, dataset_name: str | None = None) -> PromptSpec:
    """Pick a prompt spec: a built-in name, a YAML file, or ``auto`` (the built-in spec for the dataset).

    Raises:
        PromptSpecError: No spec for the dataset under ``auto``, an unknown name, or a bad file.
    """
    choice = (name_or_path or "auto").strip()
    if choice == "auto":
        spec = spec_for_dataset(dataset_name)
        if spec is None:
            raise PromptSpecError(
                f"No built-in prompt spec for dataset {dataset_name!r}. Write one (copy a built-in spec, e.g. "
                f"{_SPEC_DIR.name}/sentiment.yaml, and change its template and verbalizer) and pass "
                f"--prompt_spec path/to/spec.yaml, or name a built-in spec: {', '.join(SPECS.names())}.")
        return spec
    if choice.endswith((".yaml", ".yml")) or Path(choice).expanduser().is_file():
        return load_spec(choice)
    if choice in SPECS:
        return SPECS.get(choice)
    close = difflib.get_close_matches(choice, SPECS.names(), n=2, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise PromptSpecError(f"Unknown prompt spec {choice!r} for --prompt_spec.{hint} Built-in specs: "
                          f"{', '.join(SPECS.names())}; or give a YAML file path.")
