"""Shared fixtures. Tests run from the repository root (`python -m pytest`)."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The real notMNIST_small repack, used in place when present (never copied into the repo).
NOTMNIST_SMALL = REPO.parent / "shared" / "data" / "notMNIST_small.tar.gz"


@pytest.fixture
def notmnist_small() -> Path:
    if not NOTMNIST_SMALL.exists():
        pytest.skip(f"{NOTMNIST_SMALL} not present")
    return NOTMNIST_SMALL
