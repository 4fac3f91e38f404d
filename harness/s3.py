"""A real S3 API on this machine: moto's standalone server in a process of its own, on a free
loopback port, with one private bucket, and the settings that point the app's processes at it.

    from harness.s3 import s3_bucket

    with s3_bucket(log_dir=Path("var")) as bucket:
        env = {**worker_env, **bucket.env}  # AWS_STORAGE_BUCKET_NAME, AWS_S3_ENDPOINT_URL, ...
        ...  # start workers, gunicorn, with `env`: they keep their files in the bucket
        bucket.object_keys()  # every object's key, listed over HTTP as any S3 client would
    # here the server is stopped, and everything it held is gone (moto keeps it in memory)

Processes given the same `bucket.env` (two workers, a web server) share one bucket and no disk,
as on machines of their own. The settings read these variables when a process starts
(runway_project/settings.py), so they go in the environment of the processes it starts; a test's
own Django takes `bucket.storage()` as its STORAGES["default"]. moto does not check signatures
or keys: the credentials here are made up, and only prove that the app sends some.
"""

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]

from harness.processes import Process, StartError, free_port, wait_for_port
from runway_project.storage import bucket_storage

START_SECONDS = 30.0
REGION = "us-east-1"  # the one region whose buckets need no LocationConstraint
# Short timeouts and few retries: a server that is gone fails a test at once rather than hanging it.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})


@dataclass(frozen=True)
class S3Bucket:
    """A bucket on a running S3 server, and how to reach it. The secret stays out of its repr."""

    name: str
    endpoint_url: str
    region: str
    access_key: str
    secret_key: str = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        """The environment variables of runway_project/settings.py that keep media in this bucket."""
        return {
            "AWS_STORAGE_BUCKET_NAME": self.name,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_S3_REGION_NAME": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def storage(self) -> dict[str, Any]:
        """This bucket as settings.STORAGES["default"], built as the settings build it from `env`."""
        return bucket_storage(
            bucket_name=self.name,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            access_key=self.access_key,
            secret_key=self.secret_key,
        )

    def client(self) -> Any:
        """A boto3 S3 client of this server (boto3's clients are made at run time: no static type)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=CLIENT_CONFIG,
        )

    def object_keys(self, prefix: str = "") -> list[str]:
        """The keys of every object in the bucket (under `prefix`), sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@contextmanager
def s3_bucket(*, log_dir: Path, name: str = "") -> Iterator[S3Bucket]:
    """Start moto's S3 server as a separate process, make a bucket (`name`, or one of its own),
    yield it, and stop the server; its log is in `log_dir`."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "--host", "127.0.0.1", "--port", str(port)]
    # Its own small environment: a developer's real AWS settings mean nothing to it.
    server = Process("moto-s3", command, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, log_dir=log_dir)
    try:
        wait_for_port(port, server, seconds=START_SECONDS)
        bucket = S3Bucket(
            name=name or f"runway-media-{uuid.uuid4().hex[:8]}",
            endpoint_url=f"http://127.0.0.1:{port}",
            region=REGION,
            access_key="harness-access-key",
            secret_key=f"harness-secret-{uuid.uuid4().hex}",
        )
        _create(bucket, server)
        yield bucket
    finally:
        server.stop(grace=10)


def _create(bucket: S3Bucket, server: Process) -> None:
    try:
        bucket.client().create_bucket(Bucket=bucket.name, ACL="private")
    except Exception as exc:
        tail = server.tail()
        raise StartError(f"could not create bucket {bucket.name!r}: {exc}; {server.log.name} ends:\n{tail}") from exc
