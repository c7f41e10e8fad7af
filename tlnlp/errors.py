"""Turn the errors a user can fix (bad data, bad flags, busy output folder, missing assets) into clean exits."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["user_errors"]


def _user_error_types() -> tuple[type[BaseException], ...]:
    from tlnlp.assets import AssetError
    from tlnlp.data import DataError
    from tlnlp.hub import HubTokenError
    from tlnlp.models import HubUnreachableError
    from tlnlp.registry import RegistryError
    from tlnlp.training import OutputDirError
    from tlnlp.zeroshot import ZeroShotError

    return (AssetError, DataError, HubTokenError, HubUnreachableError, RegistryError, OutputDirError, ZeroShotError)


@contextmanager
def user_errors() -> Iterator[None]:
    """Inside a recipe's ``__main__``: print a fixable error as one ``error: ...`` message and exit with status 2.

    Programming errors keep their traceback; a message that names the field, value and fix needs none.
    """
    try:
        yield
    except _user_error_types() as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
