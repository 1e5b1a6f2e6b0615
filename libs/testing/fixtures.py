"""pytest fixtures for tests that need the running devstack.

Registered for every test run by `-p libs.testing.fixtures` in pyproject.toml
Only tests that request `devstack` start anything.
"""

from __future__ import annotations

import pytest

from libs.testing.devstack import ensure_devstack


@pytest.fixture(scope="session")
def devstack() -> dict[str, str]:
    """The devstack's environment (var/devstack.env + var/dev.env), started on first use."""
    return ensure_devstack()
