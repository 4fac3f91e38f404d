"""The S3-compatible bucket our media goes to when one is named: settings.py builds it from the
environment, and the tests (harness/s3.py) from the bucket they start, so both are the same storage."""

from typing import Any


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
        },
    }
