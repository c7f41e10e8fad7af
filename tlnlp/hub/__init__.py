"""Sharing runs: model cards (metadata via huggingface_hub, markdown body by tlnlp) and pushes to the Hub."""

from tlnlp.hub.card import CardSpec, build_model_card, hub_base_model
from tlnlp.hub.push import HubTokenError, PushResult, push_run, push_run_from_args, require_token
from tlnlp.hub.secrets import scrub_secrets

__all__ = [
    "CardSpec",
    "HubTokenError",
    "PushResult",
    "build_model_card",
    "hub_base_model",
    "push_run",
    "push_run_from_args",
    "require_token",
    "scrub_secrets",
]
