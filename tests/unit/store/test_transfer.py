"""Materializing input channels from local paths, file:// and s3:// URIs."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from strato.errors import InvalidArgument, NotFound
from strato.store.artifacts import download_uri, open_artifact_store, uri_exists

FILES = {"train.csv": b"a,b\n1,2\n", "nested dir/ü.parquet": b"PAR1", "deep/er/x": b"x"}


def write_tree(root: Path) -> None:
    for rel, data in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_download_local_file_lands_under_its_basename(tmp_path: Path) -> None:
    source = tmp_path / "my data.csv"
    source.write_bytes(b"1,2\n")
    dest = download_uri(str(source), tmp_path / "channel")
    assert dest == tmp_path / "channel" / "my data.csv"
    assert dest.read_bytes() == b"1,2\n"


def test_download_local_dir_copies_the_contents(tmp_path: Path) -> None:
    write_tree(tmp_path / "src")
    assert download_uri(str(tmp_path / "src"), tmp_path / "channel") == tmp_path / "channel"
    assert read_tree(tmp_path / "channel") == FILES


def test_download_file_uri(tmp_path: Path) -> None:
    write_tree(tmp_path / "src")
    download_uri(f"file://{tmp_path}/src/", tmp_path / "dir")
    assert read_tree(tmp_path / "dir") == FILES
    path = download_uri(f"file://{tmp_path}/src/nested dir/ü.parquet", tmp_path / "one")
    assert path.read_bytes() == b"PAR1"


def test_download_skips_store_markers(tmp_path: Path) -> None:
    write_tree(tmp_path / "src")
    store = open_artifact_store(str(tmp_path / "store"))
    store.put_dir(tmp_path / "src", "outputs/job-1")
    download_uri(store.uri("outputs/job-1"), tmp_path / "channel")
    assert read_tree(tmp_path / "channel") == FILES


def test_missing_local_source(tmp_path: Path) -> None:
    assert not uri_exists(str(tmp_path / "nope"))
    assert uri_exists(str(tmp_path))
    with pytest.raises(NotFound, match=f"input not found: file://{tmp_path}/nope"):
        download_uri(f"file://{tmp_path}/nope", tmp_path / "channel")


def test_unknown_remote_protocol_is_an_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read 'nosuchproto://x'"):
        download_uri("nosuchproto://x", tmp_path)


@pytest.fixture
def s3_prefix(s3_store_url: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    url, options = s3_store_url
    return f"{url}/{uuid.uuid4().hex}", options


@pytest.mark.s3
def test_download_s3_prefix_and_file(s3_prefix: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, options = s3_prefix
    write_tree(tmp_path / "src")
    open_artifact_store(url, options).put_dir(tmp_path / "src", "data")

    assert uri_exists(f"{url}/data", options)
    assert uri_exists(f"{url}/data/train.csv", options)
    assert not uri_exists(f"{url}/nope", options)

    assert download_uri(f"{url}/data/", tmp_path / "channel", options) == tmp_path / "channel"
    assert read_tree(tmp_path / "channel") == FILES, "contents land directly, the marker does not"
    one = download_uri(f"{url}/data/nested dir/ü.parquet", tmp_path / "one", options)
    assert one == tmp_path / "one" / "ü.parquet"
    assert one.read_bytes() == b"PAR1"


@pytest.mark.s3
def test_download_s3_missing(s3_prefix: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, options = s3_prefix
    with pytest.raises(NotFound, match=f"input not found: {url}/nothing holds no files"):
        download_uri(f"{url}/nothing", tmp_path, options)


@pytest.mark.s3
def test_download_s3_refuses_keys_escaping_the_channel(s3_prefix: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, options = s3_prefix
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    client = boto3.client(
        "s3",
        endpoint_url=options["client_kwargs"]["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id=options["key"],
        aws_secret_access_key=options["secret"],
    )
    client.put_object(Bucket=bucket, Key=f"{prefix}/in/../../escaped.txt", Body=b"evil")
    with pytest.raises(InvalidArgument, match=r"refusing to download from .*'\.\.' segments"):
        download_uri(f"{url}/in", tmp_path / "channel", options)
    assert not (tmp_path / "escaped.txt").exists()
