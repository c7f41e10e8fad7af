"""Packaging beyond pyproject.toml: the recipes ship inside the wheel as ``tlnlp.recipes``.

``recipes/`` stays a folder of scripts at the top of the checkout (the files people read and copy); the mapping
below installs the same files, with their configs and launcher files, as ``tlnlp/recipes/`` so that
``tlnlp train <recipe>`` runs them from an installed wheel.
"""

from pathlib import Path

from setuptools import find_packages, setup

RECIPE_FOLDERS = sorted(p for p in Path("recipes").rglob("*") if p.is_dir() and p.name != "__pycache__")
RECIPE_PACKAGES = ["tlnlp.recipes", *("tlnlp.recipes." + ".".join(p.relative_to("recipes").parts)
                                      for p in RECIPE_FOLDERS)]

setup(
    packages=[*find_packages(include=["tlnlp", "tlnlp.*"]), *RECIPE_PACKAGES],
    package_dir={"tlnlp.recipes": "recipes"},
)  # their YAML files (configs, launcher files) are package data: pyproject.toml's [tool.setuptools.package-data]
