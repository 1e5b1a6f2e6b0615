"""`python -m bench [name] [args...]`: run every bench/<name>.py defining main(argv), or only the named one.

Arguments after the name are passed to that benchmark's main; with no name, each benchmark runs with no
arguments (its defaults).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Protocol, cast


class _Benchmark(Protocol):
    def main(self, argv: list[str]) -> int: ...


def _benchmarks() -> dict[str, _Benchmark]:
    found: dict[str, _Benchmark] = {}
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "main", None)):
            found[info.name] = cast(_Benchmark, module)
    return found


def run(argv: list[str]) -> int:
    benchmarks = _benchmarks()
    if argv and not argv[0].startswith("-"):
        name, rest = argv[0], argv[1:]
        if name not in benchmarks:
            print(f"unknown benchmark {name!r}; known: {', '.join(sorted(benchmarks))}", file=sys.stderr)
            return 2
        return benchmarks[name].main(rest)
    status = 0
    for name in sorted(benchmarks):
        print(f"== bench {name} ==", flush=True)
        status = max(status, benchmarks[name].main(argv))
    return status


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
