"""Repository-wide test fixtures: `devstack` (session) for integration and e2e tests."""

from libs.testing.fixtures import devstack

__all__ = ["devstack"]
