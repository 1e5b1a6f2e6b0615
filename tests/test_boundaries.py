"""Services never import each other: modules of services/<a>/ import libs.* and services.<a>.* only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVICES = REPO / "services"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if node.module == "services":
                found += [(node.lineno, f"services.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def cross_service_imports(root: Path) -> list[str]:
    """``path:line imports services.<b>`` for every module of services/<a> that imports another service."""
    violations: list[str] = []
    for service_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        own = service_dir.name
        for path in sorted(service_dir.rglob("*.py")):
            for line, module in _imports(path):
                parts = module.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] != own:
                    violations.append(f"{path.relative_to(root.parent)}:{line} imports {module}")
    return violations


def test_services_do_not_import_each_other() -> None:
    violations = cross_service_imports(SERVICES)
    assert not violations, "cross-service imports:\n" + "\n".join(violations)


def test_libs_do_not_import_services() -> None:
    """libs are the shared base: they load service modules only by name at runtime (bootstrap, CLI)."""
    violations = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in sorted((REPO / "libs").rglob("*.py"))
        if "tests" not in path.relative_to(REPO).parts
        for line, module in _imports(path)
        if module == "services" or module.startswith("services.")
    ]
    assert not violations, "libs importing services:\n" + "\n".join(violations)


def test_detector_finds_violations(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "ok.py").write_text("import libs.db\nfrom services.a import x\nfrom . import y\n")
    (tmp_path / "a" / "bad.py").write_text(
        "from services.b.store import S\nimport services.b\nfrom services import b\n"
        "import importlib\nimportlib.import_module('services.b.api')\n"
    )
    found = cross_service_imports(tmp_path)
    assert len(found) == 4, found
    assert all("bad.py" in v for v in found)


@pytest.mark.parametrize("service", ["room", "recorder", "compositor", "hook", "notifier"])
def test_service_packages_exist(service: str) -> None:
    assert (SERVICES / service / "__init__.py").is_file()
