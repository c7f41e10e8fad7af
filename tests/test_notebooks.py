"""Every notebook runs top to bottom against the installed tlnlp, and none is committed with outputs.

Notebooks run with the stand-in Hub (tests/hub_server.py) as their ``HF_ENDPOINT`` and a planted ``HF_TOKEN``,
so the sharing notebook pushes and downloads without leaving the machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
EXPECTED = {"01_quickstart", "02_ulmfit_schedules", "03_zero_and_few_shot", "04_adapters_and_sharing"}


def test_there_are_notebooks():
    assert NOTEBOOKS
    assert EXPECTED <= {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name} carries outputs: strip them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_uses_only_the_public_api(path):
    """No private names (``tlnlp.x._y`` or ``from tlnlp... import _y``) in any code cell."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            if "tlnlp" in line and ("import" in line or "tlnlp." in line):
                assert "._" not in line and "import _" not in line, f"{path.name}: {line}"


def _host_bundled_models(hub) -> None:
    """The stand-in Hub serves the bundled models under their Hub ids, as the real Hub does (adapter bases)."""
    from tlnlp.assets import BUNDLED_MODELS, AssetError, bundled_model_path

    for name, model in BUNDLED_MODELS.items():
        try:
            folder = bundled_model_path(name, verify=False)
        except AssetError:
            continue
        if (folder / "config.json").is_file():  # a transformers folder (the GGUF model is converted on load)
            hub.add_folder(model.hub_id, folder)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    from tests.hub_server import PLANTED_TOKEN, serve_local_hub

    monkeypatch.setenv("HF_TOKEN", PLANTED_TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no saved login or cache of the user's is touched
    nb = nbformat.read(path, as_version=4)
    with serve_local_hub(tmp_path / "hf-cache", tokens=(PLANTED_TOKEN,)) as hub:
        _host_bundled_models(hub)
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, "\n".join(f"{e['ename']}: {e['evalue']}" for e in errors)
    printed = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert PLANTED_TOKEN not in printed
    if path.stem == "04_adapters_and_sharing":  # the push really happened, as an adapter repo
        assert "adapter_config.json" in hub.files("tlnlp-tester/movie-minilm-lora")
        assert "same predictions from the Hub as from the local folder: True" in printed
