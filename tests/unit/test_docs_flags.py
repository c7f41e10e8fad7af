"""docs/flags.md is generated from the recipes' argument dataclasses and must match them."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _make_flags():
    spec = importlib.util.spec_from_file_location("make_flags", ROOT / "docs" / "make_flags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flags_page_is_up_to_date():
    rendered = _make_flags().render()
    on_disk = (ROOT / "docs" / "flags.md").read_text(encoding="utf-8")
    assert on_disk == rendered, "docs/flags.md is stale: run python docs/make_flags.py"


def test_flags_page_covers_every_recipe_and_alias():
    text = _make_flags().render()
    from tlnlp.api import recipe_names

    for name in recipe_names():
        assert f"\n## {name}\n" in text
    for flag in ("--revision", "--torch_dtype", "--text_column_names", "--label_column_name", "--setfit_max_steps",
                 "--lora_r", "--ulmfit_preset", "--head_init", "--overwrite_output_dir"):
        assert f"`{flag}`" in text
    assert "--domain_loss_weight" in text and "--strategies" in text  # recipe-specific groups
