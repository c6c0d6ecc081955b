"""A real S3-compatible server on loopback for tests: moto's threaded server, one bucket.

Tests talk to it over HTTP exactly as they would to S3, through s3fs or boto3. Credentials are dummy
values passed in the fsspec options (never written to ``os.environ``, so nothing leaks into other
tests or into child processes that should not see them).

Use it as ``with s3_server() as (url, options): ...``, or import the session fixture ``s3_store_url``
into a ``conftest.py`` (``from tests.s3_server import s3_store_url``) to share one server per session.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest

DUMMY_KEY = "testing"
DUMMY_SECRET = "testing"
REGION = "us-east-1"


@contextlib.contextmanager
def s3_server(bucket: str = "strato-test") -> Iterator[tuple[str, dict[str, Any]]]:
    """Start moto on 127.0.0.1 (a free port), create ``bucket``, yield ``("s3://bucket", options)``."""
    import boto3
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO; keep test output about the tests.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_SECRET,
        ).create_bucket(Bucket=bucket)
        options: dict[str, Any] = {
            "key": DUMMY_KEY,
            "secret": DUMMY_SECRET,
            "client_kwargs": {"endpoint_url": endpoint, "region_name": REGION},
        }
        yield f"s3://{bucket}", options
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_store_url() -> Iterator[tuple[str, dict[str, Any]]]:
    """``("s3://strato-test", options)`` on a moto server shared by the session; use a unique prefix."""
    with s3_server() as server:
        yield server
