"""The Hugging Face token a push needs: found early (when the flags are parsed), never written anywhere."""

from __future__ import annotations

from huggingface_hub import get_token

from tlnlp.errors import UserError

__all__ = ["HubTokenError", "require_token"]


class HubTokenError(UserError, ValueError):
    """No Hugging Face token is available for a push."""


def require_token(token: str | None = None) -> str:
    """The token to push with: ``token`` if given, else ``HF_TOKEN`` or the saved login.

    Args:
        token: An explicit token (e.g. ``--hub_token``), or None.

    Returns:
        The token.

    Raises:
        HubTokenError: No token is available; the message says how to provide one.
    """
    found = token or get_token()
    if not found:
        raise HubTokenError(
            "push_to_hub needs a Hugging Face token with write access, and none was found. Set the HF_TOKEN "
            "environment variable or run `hf auth login` once (tlnlp reads the token from there and never "
            "writes it to any file), or drop --push_to_hub.")
    return found
