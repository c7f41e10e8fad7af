"""Load a Hugging Face Hub dataset into :class:`~tlnlp.data.validation.Table` objects, failing fast offline.

``datasets.load_dataset`` retries for half a minute when the Hub cannot be reached. Before calling it, this
module asks the Hub about the dataset once with a short timeout (or, in offline mode, goes straight to the
local cache), and turns every failure into a :class:`~tlnlp.data.validation.DataError` that lists the
bundled corpora.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tlnlp.data.validation import DataError, Table

__all__ = ["HUB_SPLIT_NAMES", "hub_is_offline", "load_hub_tables"]

logger = logging.getLogger(__name__)

#: Hub split name -> canonical split name; other splits are ignored (with a log line).
HUB_SPLIT_NAMES: dict[str, str] = {
    "train": "train", "validation": "validation", "valid": "validation", "val": "validation",
    "dev": "validation", "test": "test",
}
_PROBE_TIMEOUT_S = 10.0


def hub_is_offline() -> bool:
    """Whether offline mode is on (``HF_HUB_OFFLINE=1`` or ``HF_DATASETS_OFFLINE=1``), read at call time."""
    import datasets.config  # deferred: datasets and huggingface_hub are slow to import; only Hub sources need them
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE or getattr(datasets.config, "HF_HUB_OFFLINE", False)
                or getattr(datasets.config, "HF_DATASETS_OFFLINE", False))


def _bundled_hint(bundled: Sequence[str]) -> str:
    names = ", ".join(f"bundled:{n}" for n in bundled)
    return f"Bundled corpora work offline: {names}."


def _unreachable(name: str, reason: str, bundled: Sequence[str]) -> DataError:
    return DataError(
        f"The Hugging Face Hub is unreachable ({reason}), so the Hub dataset {name!r} cannot be loaded. "
        f"{_bundled_hint(bundled)} Fix: use one of them (--dataset_name "
        f"bundled:{bundled[0] if bundled else '...'}), a local file (--train_file data.csv), or connect to "
        f"the network (in offline mode, HF_HUB_OFFLINE=1, only datasets already in the local cache load)."
    )


def _not_found(name: str, bundled: Sequence[str]) -> DataError:
    return DataError(
        f"Hub dataset {name!r} was not found on the Hugging Face Hub. Fix: check the spelling (owner/name), "
        f"log in (`hf auth login`) for a private dataset, or use a local file (--train_file). "
        f"{_bundled_hint(bundled)}"
    )


def _probe(name: str, bundled: Sequence[str]) -> None:
    """Ask the Hub about ``name`` once, with a short timeout, so that no long retry loop starts."""
    from huggingface_hub import HfApi  # deferred: only Hub sources need the client
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    try:
        HfApi().dataset_info(name, timeout=_PROBE_TIMEOUT_S)
    except GatedRepoError:
        raise DataError(f"Hub dataset {name!r} is gated. Fix: accept its terms on its Hub page, then log in "
                        f"(`hf auth login`) or set HF_TOKEN.") from None
    except RepositoryNotFoundError:
        raise _not_found(name, bundled) from None
    except HfHubHTTPError as err:  # the Hub answered: let load_dataset decide
        logger.debug("Hub answered %s for %s; trying load_dataset anyway", err, name)
    except Exception as err:  # connection refused, DNS failure, timeout (raised by the HTTP client)
        raise _unreachable(name, f"{type(err).__name__}: {err}", bundled) from None


def _load(name: str, config: str | None, bundled: Sequence[str]) -> Any:
    import datasets  # deferred: datasets is slow to import; only Hub sources need it
    from datasets.exceptions import DatasetNotFoundError, DatasetsError

    offline = hub_is_offline()
    local = Path(name).exists()
    if not local and not offline:
        _probe(name, bundled)
    try:
        return datasets.load_dataset(name, config)
    except DatasetNotFoundError:
        if offline:
            raise _unreachable(name, "offline mode is on and the dataset is not in the local cache",
                               bundled) from None
        raise _not_found(name, bundled) from None
    except ConnectionError as err:
        reason = "offline mode is on and the dataset is not in the local cache" if offline else str(err)
        raise _unreachable(name, reason, bundled) from None
    except (ValueError, FileNotFoundError, DatasetsError) as err:
        raise DataError(f"Hub dataset {name!r} (config {config!r}) could not be loaded: {err} Fix: check "
                        f"--dataset_name and --dataset_config_name.") from None


def _column_names(feature: Any) -> list[str] | None:
    from datasets import ClassLabel  # deferred: as in _load

    if isinstance(feature, ClassLabel):
        return list(feature.names)
    inner = getattr(feature, "feature", None)
    if isinstance(inner, ClassLabel):
        return list(inner.names)
    return None


def _to_table(dataset: Any, source: str, class_names: dict[str, list[str]]) -> Table:
    columns = dataset.to_dict()
    for column, names in class_names.items():
        if column not in columns:
            continue

        def name_of(i: Any, names: list[str] = names) -> str | None:
            return names[i] if isinstance(i, int) and 0 <= i < len(names) else None

        columns[column] = [[name_of(i) for i in v] if isinstance(v, list) else name_of(v)
                           for v in columns[column]]
    return Table(columns=columns, row_numbers=list(range(1, len(dataset) + 1)), unit="row", source=source)


def load_hub_tables(name: str, config: str | None, label_column: str,
                    bundled: Sequence[str]) -> tuple[dict[str, Table], list[str] | None]:
    """Load a Hub dataset (or a local dataset folder) and return its splits as tables.

    ``ClassLabel`` columns are turned into their names; a test split whose labels are all ``-1`` (hidden, as
    in GLUE) is dropped with a warning.

    Args:
        name: Hub dataset name (``owner/name``) or a local folder ``datasets.load_dataset`` can read.
        config: The dataset's configuration, if it has several.
        label_column: The column holding labels (its ``ClassLabel`` names become the class list).
        bundled: Names of the bundled corpora, listed in errors.

    Returns:
        Tables per canonical split name, and the class names from the label column's ``ClassLabel`` (or None).

    Raises:
        DataError: The Hub is unreachable, the dataset does not exist, or it has no training split.
    """
    loaded = _load(name, config, bundled)
    first = next(iter(loaded.values()))
    class_names = {c: n for c, f in first.features.items() if (n := _column_names(f)) is not None}
    tables: dict[str, Table] = {}
    for hub_split, dataset in loaded.items():
        split = HUB_SPLIT_NAMES.get(str(hub_split).lower())
        if split is None or split in tables:
            logger.info("Ignoring split %r of %s", hub_split, name)
            continue
        if split != "train" and label_column in class_names and len(dataset) \
                and all(v == -1 for v in dataset[label_column]):
            logger.warning("The %s split of %s has no labels (all -1); it is left out.", hub_split, name)
            continue
        tables[split] = _to_table(dataset, f"{name}, split {hub_split}", class_names)
    if "train" not in tables:
        raise DataError(f"Hub dataset {name!r} has no training split (splits: "
                        f"{', '.join(map(str, loaded))}). Fix: pick a dataset or configuration with a "
                        f"'train' split.")
    return tables, class_names.get(label_column)
