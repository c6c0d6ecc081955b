"""Code snapshots: deterministic, lean, bounded, and safe to extract."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from strato.errors import InvalidArgument
from strato.store.artifacts import extract_snapshot, snapshot_dir


def make_code(root: Path) -> None:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "train.py").write_text("print('hi')\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "mödel config.yaml").write_text("lr: 0.1\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "empty").mkdir()
    # What must not be in a snapshot:
    for junk in ["__pycache__", ".git", ".venv", "pkg/__pycache__"]:
        (root / junk).mkdir(parents=True, exist_ok=True)
        (root / junk / "blob").write_bytes(b"x" * 100)
    (root / "pkg" / "stale.pyc").write_bytes(b"\x00")


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


def test_snapshot_is_deterministic_across_time_and_mtimes(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    make_code(code)
    first, first_hash = snapshot_dir(code)
    for path in code.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    second, second_hash = snapshot_dir(code)
    assert first == second
    assert first_hash == second_hash
    assert len(first_hash) == 64

    (code / "train.py").write_text("print('changed')\n")
    assert snapshot_dir(code)[1] != first_hash


def test_same_code_in_another_directory_gives_the_same_hash(tmp_path: Path) -> None:
    make_code(tmp_path / "a")
    make_code(tmp_path / "b")
    assert snapshot_dir(tmp_path / "a")[1] == snapshot_dir(tmp_path / "b")[1]


def test_snapshot_skips_caches_and_vcs(tmp_path: Path) -> None:
    make_code(tmp_path)
    # Sorted per directory, parents before their children (the order of a top-down walk).
    assert names(snapshot_dir(tmp_path)[0]) == [
        "empty",
        "pkg",
        "run.sh",
        "train.py",
        "pkg/__init__.py",
        "pkg/sub",
        "pkg/sub/mödel config.yaml",
    ]


def test_snapshot_zeroes_owners_and_times(tmp_path: Path) -> None:
    make_code(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(snapshot_dir(tmp_path)[0]), mode="r:gz") as tar:
        for member in tar.getmembers():
            assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")


def test_extract_round_trip_keeps_content_modes_and_inner_links(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    make_code(code)
    (code / "link.yaml").symlink_to("pkg/sub/mödel config.yaml")
    data, _ = snapshot_dir(code)
    dest = extract_snapshot(data, tmp_path / "out")
    assert (dest / "train.py").read_text() == "print('hi')\n"
    assert (dest / "pkg" / "sub" / "mödel config.yaml").read_text() == "lr: 0.1\n"
    assert (dest / "link.yaml").read_text() == "lr: 0.1\n"
    assert os.access(dest / "run.sh", os.X_OK)
    assert (dest / "empty").is_dir()
    assert not (dest / ".git").exists()


def test_snapshot_refuses_a_link_leaving_the_directory(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (tmp_path / "data").mkdir()
    (code / "data").symlink_to(tmp_path / "data")
    with pytest.raises(InvalidArgument, match=r"outside the code directory .*move data to an input channel"):
        snapshot_dir(code)


def test_snapshot_size_cap_tells_the_user_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(b"x" * 2048)
    with pytest.raises(InvalidArgument) as e:
        snapshot_dir(tmp_path, max_bytes=1024)
    assert e.value.message == (
        f"code directory {tmp_path} holds more than 1.0KiB (the snapshot limit); "
        "move data to an input channel and keep only code in it"
    )
    assert snapshot_dir(tmp_path, max_bytes=4096)[0]


def malicious_tar(member: tarfile.TarInfo, payload: bytes = b"evil") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        ok = tarfile.TarInfo("fine.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        if member.isreg():
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
        else:
            tar.addfile(member)
    return buffer.getvalue()


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("../escaped.txt"),
        tarfile.TarInfo("a/../../escaped.txt"),
        tarfile.TarInfo("/tmp/absolute.txt"),
        _symlink("link", "../../outside"),
        _symlink("abs-link", "/etc/passwd"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "link-outside", "absolute-link"],
)
def test_extract_refuses_members_escaping_dest(tmp_path: Path, member: tarfile.TarInfo) -> None:
    data = malicious_tar(member)
    dest = tmp_path / "dest"
    with pytest.raises(InvalidArgument) as e:
        extract_snapshot(data, dest)
    assert e.value.message.startswith(f"refusing to extract snapshot: member {member.name!r} is unsafe")
    assert list(dest.iterdir()) == [], "nothing is written when any member is unsafe"
    assert not (tmp_path / "escaped.txt").exists()


def test_extract_refuses_garbage(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"not a valid code snapshot \(.tar.gz\)"):
        extract_snapshot(b"definitely not a tarball", tmp_path)
