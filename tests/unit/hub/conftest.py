"""The stand-in Hub (tests/hub_server.py) for push tests."""

from __future__ import annotations

import pytest

from tests.hub_server import local_hub_fixture


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    """A stand-in Hub on 127.0.0.1 with ``HF_TOKEN`` planted; huggingface_hub points at it."""
    yield from local_hub_fixture(tmp_path, monkeypatch)
