"""Model cards for trained runs (metadata via huggingface_hub, markdown body by tlnlp)."""

from tlnlp.hub.card import build_model_card, hub_base_model, scrub_secrets

__all__ = ["build_model_card", "hub_base_model", "scrub_secrets"]
