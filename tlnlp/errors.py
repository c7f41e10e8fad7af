"""Errors a user can fix (bad data, bad flags, a busy output folder, missing assets), and the clean exit for them.

Each such error class derives from :class:`UserError` where it is defined, so this module imports nothing of tlnlp
and every layer can use it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["UserError", "user_errors"]


class UserError(Exception):
    """Base of the errors whose message names the field, the value and the fix: no traceback needed."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Inside a recipe's ``__main__``: print a fixable error as one ``error: ...`` message and exit with status 2.

    Programming errors keep their traceback; a message that names the field, value and fix needs none.
    """
    try:
        yield
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
