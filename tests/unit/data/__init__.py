"""Tests of tlnlp.data."""
