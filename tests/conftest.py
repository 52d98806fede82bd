"""Fixtures. Tests run from the repository root: `python -m pytest`."""

import pytest

from tests.references import real_archive


@pytest.fixture
def notmnist_small():
    """The real notMNIST_small archive, used in place (never copied): $NOTMNIST_SMALL, or
    notMNIST_small.tar.gz at the repository root. Tests that need it skip without it."""
    path = real_archive()
    if not path.exists():
        pytest.skip(f"{path} not present (set NOTMNIST_SMALL to the real notMNIST_small.tar.gz)")
    return path
