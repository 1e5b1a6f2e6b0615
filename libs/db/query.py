"""Building the WHERE clause of a filtered, keyset-paged list query with numbered asyncpg parameters.

```python
where = Where("account_sid = {}", account_sid)
where.add_if("status = {}", filters.status)           # skipped when the value is None
where.after(("date_created", "sid"), cursor)           # keyset: strictly after the cursor
rows = await pool.fetch(f"SELECT * FROM t WHERE {where.sql} ORDER BY date_created, sid LIMIT {where.arg(n)}",
                        *where.args)
```
Column names and SQL fragments are the caller's constants; only values become parameters.
"""

from __future__ import annotations

from collections.abc import Sequence


class Where:
    """AND-ed conditions; ``{}`` in a fragment stands for the next parameter."""

    def __init__(self, fragment: str | None = None, *values: object) -> None:
        self.clauses: list[str] = []
        self.args: list[object] = []
        if fragment is not None:
            self.add(fragment, *values)

    def arg(self, value: object) -> str:
        """Bind ``value`` and return its placeholder (``$3``)."""
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, fragment: str, *values: object) -> Where:
        """Add a condition whose ``{}`` markers take ``values`` in order."""
        self.clauses.append(fragment.format(*(self.arg(v) for v in values)))
        return self

    def add_if(self, fragment: str, value: object | None) -> Where:
        """Add a one-value condition unless ``value`` is None (an absent filter)."""
        if value is not None:
            self.add(fragment, value)
        return self

    def after(self, columns: Sequence[str], cursor: Sequence[object] | None) -> Where:
        """Keyset paging: rows whose ``columns`` tuple sorts strictly after ``cursor`` (None: no bound)."""
        if cursor is not None:
            placeholders = ", ".join(self.arg(v) for v in cursor)
            self.clauses.append(f"({', '.join(columns)}) > ({placeholders})")
        return self

    @property
    def sql(self) -> str:
        """The conditions joined with AND (``TRUE`` when there are none)."""
        return " AND ".join(self.clauses) if self.clauses else "TRUE"
