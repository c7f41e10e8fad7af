"""Unit tests for tlnlp.methods."""
