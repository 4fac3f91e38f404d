"""The S3-compatible bucket our media goes to when one is named: settings.py builds it from the
environment, and the tests (harness/s3.py) from the bucket they start, so both are the same storage."""

import threading
from typing import Any

from storages.backends.s3 import S3Storage  # type: ignore[import-untyped]

# django-storages holds a file it reads from the bucket in a temporary file, in memory up to this
# size and on disk past it; its default (0) would keep a whole video in memory.
MAX_MEMORY_BYTES = 5 * 1024 * 1024


def bucket_storage(
    *,
    bucket_name: str,
    endpoint_url: str | None,
    region_name: str | None,
    access_key: str | None,
    secret_key: str | None,
) -> dict[str, Any]:
    """STORAGES["default"] for a private bucket through django-storages: every file is private and
    reached through the app's views (or a presigned URL they redirect to); a name never overwrites."""
    return {
        "BACKEND": "runway_project.storage.BucketStorage",
        "OPTIONS": {
            "bucket_name": bucket_name,
            "endpoint_url": endpoint_url,
            "region_name": region_name,
            "access_key": access_key,
            "secret_key": secret_key,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
            "max_memory_size": MAX_MEMORY_BYTES,
        },
    }


class BucketStorage(S3Storage):
    """django-storages' S3 storage, with one boto3 session per process instead of one per thread.

    boto3's resources are not thread-safe, so django-storages gives each thread its own, made from
    a session of its own, and each session loads and keeps its own copy of S3's service model: in
    a worker whose dozens of threads all store or read a file, that was some 20 MB and 100 ms of
    CPU per thread (a worker grew to 360 MB). Here every thread's resource comes from the one
    session, made one at a time (a session is not thread-safe either), so the model is loaded once.
    """

    _making = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        state.pop("_shared_session", None)
        return state

    def _create_session(self) -> Any:
        session = self.__dict__.get("_shared_session")
        if session is None:
            session = self.__dict__["_shared_session"] = super()._create_session()
        return session

    @property
    def connection(self) -> Any:
        if getattr(self._connections, "connection", None) is None:
            with self._making:
                return super().connection
        return self._connections.connection

    @property
    def unsigned_connection(self) -> Any:
        if getattr(self._unsigned_connections, "connection", None) is None:
            with self._making:
                return super().unsigned_connection
        return self._unsigned_connections.connection


def storage_warm_up() -> None:
    """Load what the bucket's storage needs before the first video does (a worker that starts): boto3
    reads S3's service model once per process, some 200 ms of CPU that would otherwise fall on the
    first videos to end. Nothing on the local disk's storage."""
    from django.core.files.storage import storages

    storage = storages["default"]
    if isinstance(storage, BucketStorage):
        storage.connection.meta.client  # noqa: B018 (made for its side effect)
