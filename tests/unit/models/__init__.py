"""Unit tests for tlnlp.models."""
