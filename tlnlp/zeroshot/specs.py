"""Zero-shot specs: hypothesis templates and label descriptions as versioned data.

The built-in specs live in ``specs.yaml`` next to this module; users add their own with a YAML file of the same
shape (:func:`load_spec_file`). A spec's ``version`` is reported with every metric computed from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tlnlp.errors import UserError
from tlnlp.registry import Registry

__all__ = [
    "SPECS",
    "STRATEGIES",
    "ZeroShotError",
    "ZeroShotSpec",
    "check_template",
    "load_spec_file",
    "resolve_spec",
    "spec_for_dataset",
]

logger = logging.getLogger(__name__)

#: Zero-shot scoring strategies a spec may be written for.
STRATEGIES = ("nli", "embedding")
_BUILTIN_FILE = Path(__file__).with_name("specs.yaml")
_KEYS = {"version", "description", "templates", "label_descriptions", "datasets", "strategy"}


class ZeroShotError(UserError, ValueError):
    """A fixable problem with a zero-shot model, spec or dataset; the message names the setting and the fix."""


def check_template(template: str, where: str = "hypothesis_template") -> str:
    """Check that ``template`` has one ``{}`` slot for the label, as the transformers pipeline requires.

    Raises:
        ZeroShotError: The template has no ``{}`` slot, or has a named slot such as ``{label}`` (a ``ValueError``).
    """
    if not isinstance(template, str) or not template.strip():
        raise ZeroShotError(f"{where}={template!r} must be a non-empty string with a {{}} slot for the label.")
    try:
        filled = template.format("\0")
    except (IndexError, KeyError, ValueError) as err:
        raise ZeroShotError(f"{where}={template!r} cannot be filled with a label ({err!r}); write the slot as {{}}, "
                         "e.g. 'This example is {}.'") from None
    if "\0" not in filled:
        raise ZeroShotError(f"{where}={template!r} has no {{}} slot for the label; e.g. 'This example is {{}}.'")
    return template


@dataclass(frozen=True)
class ZeroShotSpec:
    """How a zero-shot scorer turns class names into hypotheses.

    Attributes:
        name: Registry name.
        version: Version of the templates and descriptions (reported with the metrics).
        templates: Hypothesis templates with a ``{}`` slot; several are scored and averaged.
        label_descriptions: Class name -> words put into the templates (other classes use their own name).
        description: One line about the spec.
        datasets: Dataset names the spec is picked for by :func:`spec_for_dataset`.
        strategy: The strategy the spec is written for (``nli`` or ``embedding``); ``None``: any.
    """

    name: str
    version: str
    templates: tuple[str, ...]
    label_descriptions: dict[str, str] = field(default_factory=dict)
    description: str = ""
    datasets: tuple[str, ...] = ()
    strategy: str | None = None

    def describe(self, label: str) -> str:
        """The words that stand for ``label`` in a template."""
        return self.label_descriptions.get(label, label)

    def hypotheses(self, labels: list[str]) -> list[list[str]]:
        """One list of hypotheses per template, in ``labels`` order."""
        return [[template.format(self.describe(label)) for label in labels] for template in self.templates]

    def as_dict(self) -> dict[str, Any]:
        """The spec as JSON-able data (written next to the results)."""
        return {"name": self.name, "version": self.version, "templates": list(self.templates),
                "label_descriptions": dict(self.label_descriptions), "strategy": self.strategy}


def _spec_from_mapping(name: str, raw: Any, source: str) -> ZeroShotSpec:
    where = f"spec {name!r} in {source}"
    if not isinstance(raw, dict):
        raise ZeroShotError(f"{where} must be a mapping with version and templates, got {type(raw).__name__}.")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ZeroShotError(f"{where} has unknown keys {unknown}; allowed: {', '.join(sorted(_KEYS))}. "
                            "Fix: rename or remove them.")
    if "version" not in raw:
        raise ZeroShotError(f"{where} has no version; add e.g. `version: 1.0.0` (reported with every metric).")
    templates = raw.get("templates") or ["This example is {}."]
    if isinstance(templates, str):
        templates = [templates]
    for template in templates:
        check_template(template, f"{where}: template")
    descriptions = raw.get("label_descriptions") or {}
    if not isinstance(descriptions, dict) or not all(isinstance(v, str) and v for v in descriptions.values()):
        raise ZeroShotError(f"{where}: label_descriptions must map class names to non-empty strings.")
    strategy = raw.get("strategy")
    if strategy is not None and strategy not in STRATEGIES:
        raise ZeroShotError(f"{where}: strategy={strategy!r}; choose one of: {', '.join(STRATEGIES)}.")
    return ZeroShotSpec(name=name, version=str(raw["version"]), templates=tuple(templates),
                        label_descriptions={str(k): v for k, v in descriptions.items()},
                        description=str(raw.get("description", "")),
                        datasets=tuple(raw.get("datasets") or ()), strategy=strategy)


def load_spec_file(path: str | Path) -> dict[str, ZeroShotSpec]:
    """Read specs from a YAML file shaped like the built-in ``specs.yaml`` (name -> spec).

    Raises:
        ZeroShotError: The file is missing, not YAML, or a spec is malformed (the message names it and the key).
    """
    file = Path(path)
    if not file.is_file():
        raise ZeroShotError(f"spec_file={str(path)!r}: file not found. Fix: give the path of a YAML file of specs "
                            "(name -> version, templates, ...), or drop --spec_file to use the built-in specs.")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ZeroShotError(f"spec_file={str(path)!r} is not valid YAML: {' '.join(str(err).split())}. Fix: correct "
                            "the syntax at that line.") from None
    if not isinstance(data, dict):
        raise ZeroShotError(f"spec_file={str(path)!r} must map spec names to specs.")
    return {str(name): _spec_from_mapping(str(name), raw, str(path)) for name, raw in data.items()}


def _builtin() -> Registry[ZeroShotSpec]:
    registry: Registry[ZeroShotSpec] = Registry("zero-shot spec", "--spec")
    for name, spec in load_spec_file(_BUILTIN_FILE).items():
        registry.register(name, spec)
    return registry


#: The built-in specs (``default``, ``sentiment``, ``trec6``, ``sms_spam``, ``bbc_news``, ...).
SPECS: Registry[ZeroShotSpec] = _builtin()


def spec_for_dataset(dataset_name: str | None, strategy: str = "nli",
                     extra: dict[str, ZeroShotSpec] | None = None) -> ZeroShotSpec:
    """The spec written for ``dataset_name`` (user specs first), else ``default``.

    Among the specs that list the dataset, one written for ``strategy`` wins over one written for any strategy;
    a spec written for the other strategy is not picked.
    """
    candidates = list((extra or {}).values()) + [SPECS.get(n) for n in SPECS.names()]
    for wanted in (strategy, None):
        for spec in candidates:
            if dataset_name in spec.datasets and spec.strategy == wanted:
                return spec
    return (extra or {}).get("default") or SPECS.get("default")


def resolve_spec(name: str, dataset_name: str | None = None, strategy: str = "nli",
                 spec_file: str | None = None, templates: list[str] | None = None) -> ZeroShotSpec:
    """Pick a spec by name (``auto``: the one written for the dataset), optionally overriding its templates.

    Args:
        name: A spec name from ``spec_file`` or the built-ins, or ``auto``.
        dataset_name: The dataset being scored (for ``auto``).
        strategy: ``nli`` or ``embedding`` (for ``auto``).
        spec_file: A YAML file with more specs; its names win over the built-ins.
        templates: Templates that replace the spec's own (the version then gets a ``+custom`` suffix).

    Raises:
        RegistryError: Unknown spec name (close names are suggested).
    """
    extra = load_spec_file(spec_file) if spec_file else {}
    if name == "auto":
        spec = spec_for_dataset(dataset_name, strategy, extra)
    elif name in extra:
        spec = extra[name]
    else:
        spec = SPECS.get(name)
    if templates:
        for template in templates:
            check_template(template)
        spec = ZeroShotSpec(name=spec.name, version=f"{spec.version}+custom", templates=tuple(templates),
                            label_descriptions=spec.label_descriptions, description=spec.description,
                            datasets=spec.datasets, strategy=spec.strategy)
    logger.info("Zero-shot spec %s (version %s): templates %s", spec.name, spec.version, list(spec.templates))
    return spec
