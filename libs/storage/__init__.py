"""Object storage: the async ObjectStore port, the MinIO adapter and an in-memory fake."""

from libs.storage.memory import InMemoryObjectStore
from libs.storage.minio_store import MinioObjectStore
from libs.storage.port import ObjectInfo, ObjectStore

__all__ = ["InMemoryObjectStore", "MinioObjectStore", "ObjectInfo", "ObjectStore"]
