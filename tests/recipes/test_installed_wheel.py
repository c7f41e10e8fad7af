"""From a built wheel, installed in a fresh environment outside the checkout, a user trains with the recipes."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import yaml

from tests.recipes.conftest import ROOT, recipe_args

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ACCELERATE_MIXED_PRECISION")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A new virtual environment with tlnlp's wheel installed; its dependencies come from the test's environment."""
    work = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work / "dist"),
          str(ROOT)], cwd=work)
    wheel = next((work / "dist").glob("tlnlp-*.whl"))
    env_dir = work / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], cwd=work)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies (torch, transformers...) of the running environment, behind the wheel's own files
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


def test_the_wheel_trains_with_tlnlp_train_and_under_accelerate(installed, tmp_path, tiny_bert_dir):
    python, tlnlp_cmd = installed / "bin" / "python", installed / "bin" / "tlnlp"
    where = _run([str(python), "-c", "import tlnlp.recipes.classification as r; print(r.__file__)"], tmp_path)
    assert where.stdout.startswith(str(installed)), "the recipe comes from the installed wheel, not the checkout"
    out = tmp_path / "plain"
    _run([str(tlnlp_cmd), "train", "classification", "--config", "movie_minilm",
          *recipe_args(tiny_bert_dir, out, "--max_steps", "2")], tmp_path)
    assert (out / "model.safetensors").is_file()
    assert "#   tlnlp train classification --config run_config.yaml" in (out / "run_config.yaml").read_text()
    launcher = yaml.safe_load(Path(where.stdout.strip()).with_name("accelerate").joinpath("cpu_1proc.yaml").read_text())
    assert launcher["num_processes"] == 1
    out = tmp_path / "accelerate"
    _run([str(python), "-m", "accelerate.commands.launch", "--config_file",
          str(Path(where.stdout.strip()).with_name("accelerate") / "cpu_1proc.yaml"), "-m", "tlnlp", "train",
          "classification", *recipe_args(tiny_bert_dir, out, "--max_steps", "2")], tmp_path)
    assert "#   accelerate launch -m tlnlp train classification --config run_config.yaml" in (
        out / "run_config.yaml").read_text()
    rerun = tmp_path / "rerun"
    _run([str(tlnlp_cmd), "train", "classification", "--config", str(out / "run_config.yaml"),
          "--output_dir", str(rerun)], tmp_path)
    assert (rerun / "test_results.json").is_file(), "the run's own config reproduces it"
