"""Shared fixtures: the shared data directory and small helpers."""
from __future__ import annotations

from pathlib import Path

import pytest

from opensim_surrogate.paths import data_root


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data directory; the suite needs it (it checks against real data)."""
    return data_root()


@pytest.fixture(scope="session")
def rajagopal_model(data_dir: Path) -> Path:
    return data_dir / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim"
