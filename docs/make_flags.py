"""Write docs/flags.md: every flag of every recipe, read from the recipes' argument dataclasses.

    python docs/make_flags.py           # rewrite docs/flags.md
    python docs/make_flags.py --check   # exit 1 when docs/flags.md is stale

Each recipe module lists the dataclasses it parses in ``ARGUMENTS`` and the defaults it changes in ``DEFAULTS``.
tlnlp's own fields are written out (name, aliases, default, help); the fields a dataclass inherits from
``transformers.TrainingArguments`` are summarised in one line, with the defaults tlnlp changes
(``tlnlp.config.TLNLP_TRAINING_DEFAULTS``). Method flags come from the methods that ship with tlnlp; an installed
plugin's flags are left out so that the page is the same on every machine. The output depends on nothing else.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

FLAGS_MD = Path(__file__).resolve().parent / "flags.md"

HEADER = """\
# Every flag of every recipe

Generated from the recipes' argument dataclasses by `python docs/make_flags.py`; do not edit it by hand (the test
suite fails when it is stale). The README has the few flags that matter per recipe; this page has all of them.

Every flag is also a key of the `--config` YAML file (flags override the file), and `--flag_name` may be written
`--flag-name`. An alias is another name of the same setting, on the command line and in YAML. A recipe runs as
`tlnlp train <recipe> --config FILE_OR_SHIPPED_NAME [flags]`, as `accelerate launch recipes/<recipe>.py [flags]`
in a checkout, or from Python as `tlnlp.train("<recipe>", ...)` with the flags as keyword arguments.

Flag groups that several recipes share (model, data, method, training) are listed once, under
[Shared flag groups](#shared-flag-groups); each recipe names the groups it takes, its own flags and the
defaults it changes.
"""

TRAINING_NOTE = """\
Every `transformers.TrainingArguments` flag works unchanged (`--output_dir`, `--learning_rate`,
`--num_train_epochs`, `--max_steps`, `--per_device_train_batch_size`, `--eval_strategy`, `--save_steps`,
`--seed`, `--report_to`, `--push_to_hub`, `--do_train`/`--do_eval`/`--do_predict`, ...); see the
transformers documentation of `TrainingArguments` for each. tlnlp changes these defaults (a flag or YAML key
sets them back):
"""


def _methods_shipped_fields(method_args: type) -> set[str]:
    """The MethodArgs fields that tlnlp's own methods define (an installed plugin's are left out)."""
    names: set[str] = set()
    for cls in method_args.__mro__[1:]:  # the bases: MethodArgsBase and each method's options class
        if dataclasses.is_dataclass(cls) and cls.__module__.startswith("tlnlp."):
            names.update(f.name for f in dataclasses.fields(cls))
    return names


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("``", "`").replace("|", "\\|")


def _default(field: dataclasses.Field, override: dict[str, Any]) -> str:
    if field.name in override:
        value = override[field.name]
    elif field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "(required)"
    return _value(value)


def _value(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "None"
    if isinstance(value, str):
        return f"`{value}`" if value else "`''`"
    return f"`{value!r}`".replace("|", "\\|")


def _aliases(field: dataclasses.Field) -> list[str]:
    names = field.metadata.get("aliases", [])
    return [names] if isinstance(names, str) else list(names)


def _own_fields(dtype: type) -> list[dataclasses.Field]:
    """The fields tlnlp declares on ``dtype``: none from TrainingArguments unless tlnlp redefines it; no plugin's."""
    from transformers import TrainingArguments

    fields = [f for f in dataclasses.fields(dtype) if f.init]
    if issubclass(dtype, TrainingArguments):  # tlnlp's fields: those its subclasses declare (new or redefined)
        declared = {name for cls in dtype.__mro__[:dtype.__mro__.index(TrainingArguments)]
                    for name in inspect.get_annotations(cls)}
        fields = [f for f in fields if f.name in declared]
    if dtype.__name__ == "MethodArgs":
        shipped = _methods_shipped_fields(dtype)
        fields = [f for f in fields if f.name in shipped]
    return fields


def _table(dtype: type, override: dict[str, Any]) -> list[str]:
    rows = ["| flag | default | help |", "|---|---|---|"]
    for f in _own_fields(dtype):
        name = f"`--{f.name}`" + "".join(f" (alias `--{a.lstrip('-')}`)" for a in _aliases(f))
        rows.append(f"| {name} | {_default(f, override)} | {_cell(f.metadata.get('help', ''))} |")
    return rows


def _anchor(title: str) -> str:
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _description(dtype: type) -> str | None:
    """The dataclass's docstring on one line (None for the signature that dataclasses writes when there is none)."""
    if dtype.__name__ == "MethodArgs":  # its docstring lists the registered methods, plugins included
        return ("The transfer method (`--method`) and `--early_stopping_patience`, plus the options of every method "
                "that ships with tlnlp; an installed method plugin adds its own flags (they show in `--help`).")
    doc = (dtype.__doc__ or "").strip()
    return None if not doc or doc.startswith(f"{dtype.__name__}(") else _cell(doc)


def _group_title(dtype: type, recipe: str | None = None) -> str:
    return f"{recipe}: {dtype.__name__}" if recipe else f"{dtype.__name__} flags"


def _group_link(recipe: str, dtype: type, shared: list[type]) -> str:
    title = _group_title(dtype, None if dtype in shared else recipe)
    return f"[{dtype.__name__}](#{_anchor(title)})"


def render() -> str:
    """The text of docs/flags.md."""
    from transformers import TrainingArguments

    from tlnlp.api import recipe_names
    from tlnlp.config import TLNLP_TRAINING_DEFAULTS

    recipes = {name: importlib.import_module(f"tlnlp.recipes.{name}") for name in recipe_names()}
    users: dict[type, list[str]] = {}
    for name, module in recipes.items():
        for dtype in module.ARGUMENTS:
            users.setdefault(dtype, []).append(name)
    shared = [dtype for dtype, names in users.items() if len(names) > 1]

    out = [HEADER, "| recipe | flag groups |", "|---|---|"]
    for name, module in recipes.items():
        groups = ", ".join(_group_link(name, d, shared) for d in module.ARGUMENTS)
        out.append(f"| [{name}](#{_anchor(name)}) | {groups} |")
    out.append("")

    for name, module in recipes.items():
        doc = (module.__doc__ or "").strip().splitlines()[0]
        out += [f"## {name}", "", f"{_cell(doc)} `tlnlp train {name}`, or `recipes/{name}.py` in a checkout.", ""]
        out.append("Flag groups: " + ", ".join(_group_link(name, d, shared) for d in module.ARGUMENTS) + ".")
        out.append("")
        defaults = dict(module.DEFAULTS)
        if defaults:
            out.append("Defaults this recipe changes: "
                       + ", ".join(f"`--{k}` {_value(v)}" for k, v in defaults.items()) + ".")
            out.append("")
        for dtype in module.ARGUMENTS:
            if dtype in shared:
                continue
            out += [f"### {_group_title(dtype, name)}", ""]
            if _description(dtype):
                out += [_description(dtype), ""]
            out += _table(dtype, defaults)
            out.append("")

    out += ["## Shared flag groups", ""]
    for dtype in shared:
        out += [f"### {_group_title(dtype)}", "",
                "Taken by: " + ", ".join(f"[{n}](#{_anchor(n)})" for n in users[dtype]) + ".", ""]
        if issubclass(dtype, TrainingArguments):
            out.append(TRAINING_NOTE)
            out += ["| flag | tlnlp default |", "|---|---|"]
            out += [f"| `--{k}` | {_value(v)} |" for k, v in TLNLP_TRAINING_DEFAULTS.items()]
            out += ["", "Without a GPU, `--dataloader_pin_memory` defaults to false, and under several processes "
                        "`--use_cpu` to true (so that the processes join one gloo group). tlnlp adds or redefines:", ""]
        elif _description(dtype):
            out += [_description(dtype), ""]
        out += _table(dtype, {})
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    """Write docs/flags.md, or with ``--check`` exit 1 when it is out of date."""
    text = render()
    if "--check" in argv:
        if FLAGS_MD.read_text(encoding="utf-8") != text:
            print("docs/flags.md is stale: run python docs/make_flags.py", file=sys.stderr)
            return 1
        return 0
    FLAGS_MD.write_text(text, encoding="utf-8")
    print(f"wrote {FLAGS_MD.name} ({len(text):,} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
