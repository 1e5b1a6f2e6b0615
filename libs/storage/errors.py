"""Errors of the storage layer.

StorageError
 └── ObjectNotFound   the key does not exist (reads and ranges)
"""


class StorageError(Exception):
    """Base of libs.storage errors (wraps S3 failures that are not "not found")."""


class ObjectNotFound(StorageError):  # noqa: N818  # reads as a fact
    """No object with that key."""
