"""Errors of the database layer.

DbError
 └── MigrationError   a migration file failed or the migrations folder is malformed
"""


class DbError(Exception):
    """Base of libs.db errors."""


class MigrationError(DbError):
    """A migration could not be applied."""
