"""The S3-compatible bucket our media goes to when one is named: settings.py builds it from the
environment, and the tests (harness/s3.py) from the bucket they start, so both are the same storage."""

from typing import Any

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
        "BACKEND": "storages.backends.s3.S3Storage",
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
