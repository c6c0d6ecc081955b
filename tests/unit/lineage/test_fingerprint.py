"""Dataset fingerprints: content and names count, creation order and timestamps do not; S3 prefixes are
fingerprinted from one listing, without downloading an object."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from strato.errors import InvalidArgument
from strato.lineage import fingerprint as fp_module
from strato.lineage.fingerprint import dataset_key, fingerprint


def write(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


FILES = {"train/part-0.csv": b"x,y\n1,2\n", "train/part-1.csv": b"x,y\n3,4\n", "README": b"iris"}


def test_directory_fingerprint_is_stable_and_order_independent(tmp_path: Path) -> None:
    first = write(tmp_path / "a", FILES)
    second = write(tmp_path / "b", dict(reversed(FILES.items())))  # created in the other order
    fp = fingerprint(str(first))
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert fingerprint(str(first)) == fp == fingerprint(str(second))
    assert fingerprint(f"file://{first}") == fp
    os.utime(first / "README", (1, 1))  # timestamps do not count
    (first / "README").chmod(0o600)  # nor permissions
    assert fingerprint(str(first)) == fp


def test_content_names_and_files_change_the_fingerprint(tmp_path: Path) -> None:
    root = write(tmp_path / "d", FILES)
    fp = fingerprint(str(root))
    (root / "train/part-0.csv").write_bytes(b"x,y\n1,3\n")  # same size, other bytes
    changed = fingerprint(str(root))
    assert changed != fp
    (root / "train/part-0.csv").rename(root / "train/part-9.csv")
    renamed = fingerprint(str(root))
    assert renamed not in (fp, changed)
    (root / "new.csv").write_bytes(b"")
    assert fingerprint(str(root)) not in (fp, changed, renamed)
    (root / "new.csv").unlink()
    assert fingerprint(str(root)) == renamed


def test_store_bookkeeping_is_ignored(tmp_path: Path) -> None:
    root = write(tmp_path / "d", FILES)
    fp = fingerprint(str(root))
    (root / ".strato-complete").write_text("")
    assert fingerprint(str(root)) == fp


def test_a_single_file(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"x,y\n1,2\n")
    fp = fingerprint(str(path))
    assert fingerprint(str(path)) == fp
    path.write_bytes(b"x,y\n1,2\n3,4\n")
    assert fingerprint(str(path)) != fp


def test_files_are_read_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(10_000)
    (tmp_path / "blob").write_bytes(data)
    expected = fingerprint(str(tmp_path / "blob"))
    reads: list[int] = []
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, *args, **kwargs)
        real_read = handle.read

        def read(n: int = -1) -> Any:
            reads.append(n)
            return real_read(n)

        handle.read = read
        return handle

    monkeypatch.setattr(fp_module, "CHUNK", 4096)
    monkeypatch.setattr(Path, "open", counting_open)
    assert fingerprint(str(tmp_path / "blob")) == expected
    assert reads and all(0 < n <= 4096 for n in reads)  # never read(-1): never a whole file
    assert fp_module._file_sha256(tmp_path / "blob") == hashlib.sha256(data).hexdigest()


def test_a_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"cannot fingerprint dataset '.*nope': .*nope does not exist"):
        fingerprint(str(tmp_path / "nope"))
    with pytest.raises(InvalidArgument, match="the URI is empty"):
        fingerprint("")


def test_dataset_key() -> None:
    assert dataset_key("s3://b/train", "0123456789abcdef" * 4) == "s3://b/train@0123456789abcdef"


@pytest.mark.s3
def test_s3_prefix_fingerprint_from_the_listing(
    s3_store_url: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    import s3fs

    url, options = s3_store_url
    bucket = url.removeprefix("s3://")
    prefix = f"fp-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client(
        "s3",
        endpoint_url=options["client_kwargs"]["endpoint_url"],
        region_name=options["client_kwargs"]["region_name"],
        aws_access_key_id=options["key"],
        aws_secret_access_key=options["secret"],
    )
    for rel, data in FILES.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/data/{rel}", Body=data)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/data2/other.csv", Body=b"not ours")  # shares the prefix
    s3.put_object(Bucket=bucket, Key=f"{prefix}/data/.strato-complete", Body=b"")

    def no_download(*_: Any, **__: Any) -> Any:
        raise AssertionError("a fingerprint must not download objects")

    for method in ("_cat_file", "_get_file", "_open", "open", "cat", "get"):
        monkeypatch.setattr(s3fs.S3FileSystem, method, no_download)

    uri = f"{url}/{prefix}/data"
    fp = fingerprint(uri, options)
    assert fingerprint(f"{uri}/", options) == fp
    s3.put_object(Bucket=bucket, Key=f"{prefix}/data2/more.csv", Body=b"still not ours")
    assert fingerprint(uri, options) == fp
    s3.put_object(Bucket=bucket, Key=f"{prefix}/data/train/part-0.csv", Body=b"x,y\n1,3\n")  # same size
    changed = fingerprint(uri, options)
    assert changed != fp
    single = fingerprint(f"{uri}/README", options)
    assert single not in (fp, changed)
    with pytest.raises(InvalidArgument, match=f"cannot fingerprint dataset '{url}/{prefix}/nope': no such file"):
        fingerprint(f"{url}/{prefix}/nope", options)
