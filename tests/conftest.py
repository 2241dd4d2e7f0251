"""Shared test fixtures.

``shared_data``: the development data shared between checkouts (``../shared/data`` next to the repository root),
or a skip with a clear reason where it is absent (a fresh clone, CI without the data).
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
SHARED_DATA_MISSING = "../shared/data not found: shared development data absent"


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(SHARED_DATA_MISSING)
    return SHARED_DATA
