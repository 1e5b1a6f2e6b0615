"""pytest fixtures for tests that need the running devstack.

Use from any package's tests: `from libs.testing.fixtures import devstack  # noqa: F401` in a conftest.py
(tests/conftest.py already does). Only tests that request `devstack` start anything.
"""

from __future__ import annotations

import pytest

from libs.testing.devstack import ensure_devstack


@pytest.fixture(scope="session")
def devstack() -> dict[str, str]:
    """The devstack's environment (var/devstack.env + var/dev.env), started on first use."""
    return ensure_devstack()
