"""Repository-wide test configuration. The `devstack` fixture comes from the libs.testing.fixtures plugin
(registered in pyproject.toml), so tests of every package can use it."""
