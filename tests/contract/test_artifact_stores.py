"""One contract, every artifact store backend: a local directory and S3 (a real moto server)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from strato.errors import Conflict, InvalidArgument, NotFound
from strato.store.artifacts import ArtifactStore, open_artifact_store, safe_path
from strato.store.artifacts.store import FsspecArtifactStore, LocalArtifactStore

UNICODE_NAME = "données d'entrée/modèle ü 1.bin"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return open_artifact_store(str(tmp_path / "store"))
    url, options = request.getfixturevalue("s3_store_url")
    # One prefix per test: the server is shared by the session.
    return open_artifact_store(f"{url}/{uuid.uuid4().hex}", options)


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "MLmodel": b"flavors: {}\n",
        "sub dir/ü.txt": "héllo".encode(),
        "sub dir/deeper/weights.bin": bytes(range(256)) * 10,
        UNICODE_NAME: b"\x00\x01",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---- construction ------------------------------------------------------------------------------


def test_backend_is_chosen_by_scheme(tmp_path: Path) -> None:
    assert type(ArtifactStore(str(tmp_path))) is LocalArtifactStore
    assert type(open_artifact_store(f"file://{tmp_path}")) is LocalArtifactStore
    assert open_artifact_store(f"file://{tmp_path}/").uri("a") == f"file://{tmp_path}/a"


@pytest.mark.s3
def test_s3_url_gives_fsspec_store(s3_store_url: tuple[str, dict]) -> None:
    url, options = s3_store_url
    assert type(ArtifactStore(f"{url}/p/", options)) is FsspecArtifactStore


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(InvalidArgument) as e:
        open_artifact_store("s3x://bucket/x")
    assert "unknown artifact store scheme 's3x'" in e.value.message
    assert "did you mean 's3'?" in e.value.message
    assert "(known: file, s3, s3a)" in e.value.message


def test_local_store_does_not_import_fsspec(tmp_path: Path) -> None:
    code = (
        "import sys; from strato.store.artifacts import open_artifact_store;"
        f"s = open_artifact_store({str(tmp_path)!r}); s.put_bytes('a/b', b'x'); s.list();"
        "assert s.get_bytes('a/b') == b'x'; assert 'fsspec' not in sys.modules, 'fsspec imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- bytes and files -------------------------------------------------------------------------


def test_uri_names_the_backend(store: ArtifactStore) -> None:
    uri = store.uri("a b/ü.txt")
    if isinstance(store, LocalArtifactStore):
        assert uri == f"file://{store.root}/a b/ü.txt"
    else:
        assert uri.startswith("s3://strato-test/") and uri.endswith("/a b/ü.txt")


def test_bytes_round_trip_with_unicode_and_spaces(store: ArtifactStore) -> None:
    uri = store.put_bytes(UNICODE_NAME, b"payload")
    assert uri == store.uri(UNICODE_NAME)
    assert store.get_bytes(UNICODE_NAME) == b"payload"
    assert store.get_bytes(f"./{UNICODE_NAME}") == b"payload"
    store.put_bytes(UNICODE_NAME, b"replaced")
    assert store.get_bytes(UNICODE_NAME) == b"replaced"
    assert store.list() == [UNICODE_NAME]


def test_get_bytes_missing_names_the_uri(store: ArtifactStore) -> None:
    with pytest.raises(NotFound) as e:
        store.get_bytes("nope/x.txt")
    assert e.value.message == f"artifact not found: {store.uri('nope/x.txt')}"


def test_file_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "in put.txt"
    source.write_bytes(b"file data \xe2\x9c\x93")
    assert store.put_file(source, "files/ü 1.txt") == store.uri("files/ü 1.txt")
    dest = store.get_file("files/ü 1.txt", tmp_path / "out" / "deep" / "copy.txt")
    assert dest.read_bytes() == source.read_bytes()


def test_file_errors_name_what_is_missing(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"local file not found: .*missing\.txt"):
        store.put_file(tmp_path / "missing.txt", "x")
    with pytest.raises(NotFound) as e:
        store.get_file("nope.txt", tmp_path / "out.txt")
    assert store.uri("nope.txt") in e.value.message


# ---- directories -------------------------------------------------------------------------------


def test_dir_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "model")
    uri = store.put_dir(tmp_path / "model", "models/m 1/v1")
    assert uri == store.uri("models/m 1/v1")
    assert store.is_complete("models/m 1/v1")
    assert store.list("models/m 1/v1") == sorted(f"models/m 1/v1/{rel}" for rel in files)
    out = store.get_dir("models/m 1/v1", tmp_path / "download")
    assert read_tree(out) == files


def test_put_dir_replaces_the_previous_version(store: ArtifactStore, tmp_path: Path) -> None:
    make_tree(tmp_path / "v1")
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "only.txt").write_bytes(b"new")
    store.put_dir(tmp_path / "v1", "out")
    store.put_dir(tmp_path / "v2", "out")
    assert store.list() == ["out/only.txt"]
    assert store.is_complete("out")


def test_get_dir_missing_and_local_dir_missing(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as e:
        store.get_dir("no/such/dir", tmp_path / "dl")
    assert e.value.message == f"artifact directory not found: {store.uri('no/such/dir')}"
    with pytest.raises(NotFound, match="local directory not found"):
        store.put_dir(tmp_path / "absent", "x")
    assert not store.is_complete("no/such/dir")


# ---- listing, existence, size ------------------------------------------------------------------


def test_list_is_sorted_recursive_and_respects_prefix_boundaries(store: ArtifactStore) -> None:
    assert store.list() == []
    for name in ["b/2", "a/z", "ab/x", "a/sub/y", "a b", "Z"]:
        store.put_bytes(name, name.encode())
    assert store.list() == sorted(["b/2", "a/z", "ab/x", "a/sub/y", "a b", "Z"])
    assert store.list("a") == ["a/sub/y", "a/z"]
    assert store.list("a/") == ["a/sub/y", "a/z"]
    assert store.list("a/z") == ["a/z"]
    assert store.list("nothing") == []


def test_exists(store: ArtifactStore) -> None:
    store.put_bytes("dir/file.txt", b"x")
    assert store.exists("dir/file.txt")
    assert store.exists("dir")
    assert not store.exists("di")
    assert not store.exists("dir/other")
    assert store.is_file("dir/file.txt")
    assert not store.is_file("dir")
    assert not store.is_file("dir/other")


def test_size(store: ArtifactStore) -> None:
    store.put_bytes("d/f", b"12345")
    assert store.size("d/f") == 5
    for missing in ["d/nope", "d"]:
        with pytest.raises(NotFound) as e:
            store.size(missing)
        assert store.uri(missing) in e.value.message


# ---- delete --------------------------------------------------------------------------------------


def test_delete_file_and_prefix_is_idempotent(store: ArtifactStore) -> None:
    for name in ["logs/1/out.txt", "logs/1/err.txt", "logs/2/out.txt", "logs10/x", "keep"]:
        store.put_bytes(name, b".")
    store.delete("logs/2/out.txt")
    assert not store.exists("logs/2/out.txt")
    assert not store.exists("logs/2")
    store.delete("logs")
    assert store.list() == ["keep", "logs10/x"]
    store.delete("logs")
    store.delete("never/was")
    assert not store.exists("logs")


# ---- read_range ----------------------------------------------------------------------------------


def test_read_range(store: ArtifactStore) -> None:
    store.put_bytes("log.txt", b"0123456789")
    assert store.read_range("log.txt", 0, 4) == b"0123"
    assert store.read_range("log.txt", 3, 2) == b"34"
    assert store.read_range("log.txt", 8, 100) == b"89"
    assert store.read_range("log.txt", 10, 5) == b""
    assert store.read_range("log.txt", 50, 5) == b""
    assert store.read_range("log.txt", 2, 0) == b""


def test_read_range_errors(store: ArtifactStore) -> None:
    with pytest.raises(NotFound) as e:
        store.read_range("missing.log", 0, 10)
    assert store.uri("missing.log") in e.value.message
    with pytest.raises(NotFound):
        store.read_range("missing.log", 0, 0)
    store.put_bytes("log.txt", b"x")
    with pytest.raises(InvalidArgument, match="offset >= 0 and length >= 0, got -1 and 5"):
        store.read_range("log.txt", -1, 5)


# ---- local_path ----------------------------------------------------------------------------------


def test_local_path(store: ArtifactStore) -> None:
    store.put_bytes("m/w.bin", b"w")
    path = store.local_path("m/w.bin")
    if isinstance(store, LocalArtifactStore):
        assert path is not None and path.read_bytes() == b"w"
    else:
        assert path is None


# ---- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("../x", "'..'"),
        ("/etc/passwd", "relative"),
        ("a/../../b", "'..'"),
        ("a\\b", "backslashes"),
        ("C:\\Windows", "backslashes"),
        ("C:/Windows", "relative"),
        ("", "empty"),
        ("./", "below the store root"),
        ("a\x00b", "control characters"),
        ("a\nb", "control characters"),
    ],
)
def test_safe_path_rejects_with_the_path_and_the_rule(path: str, rule: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        safe_path(path)
    assert f"invalid artifact path {path!r}" in e.value.message
    assert rule in e.value.message


def test_safe_path_normalizes_and_allows_unicode_and_spaces() -> None:
    assert safe_path("./a//b/") == "a/b"
    assert safe_path("données/mon modèle.pkl") == "données/mon modèle.pkl"
    assert safe_path("a/./b") == "a/b"


def test_every_method_checks_its_path(store: ArtifactStore, tmp_path: Path) -> None:
    calls = [
        lambda: store.uri("../x"),
        lambda: store.put_bytes("../x", b""),
        lambda: store.get_bytes("/etc/passwd"),
        lambda: store.get_file("a/../../b", tmp_path / "f"),
        lambda: store.get_dir("a\\b", tmp_path / "d"),
        lambda: store.exists(""),
        lambda: store.list("../"),
        lambda: store.size("../x"),
        lambda: store.delete(""),
        lambda: store.read_range("../x", 0, 1),
        lambda: store.local_path("../x"),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument, match="invalid artifact path"):
            call()


def test_reserved_names_are_refused(store: ArtifactStore) -> None:
    with pytest.raises(InvalidArgument, match="reserved for the store"):
        store.put_bytes("out/.strato-complete", b"")


def test_local_write_over_a_directory_is_a_conflict(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path))
    store.put_bytes("d/f", b"x")
    with pytest.raises(Conflict, match="a directory is there"):
        store.put_bytes("d", b"x")
    with pytest.raises(Conflict, match="a parent of it is a file"):
        store.put_bytes("d/f/g", b"x")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["d", "f"], "no temporaries left behind"


def test_local_put_dir_leaves_no_temporaries(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "store"))
    make_tree(tmp_path / "m")
    store.put_dir(tmp_path / "m", "out")
    store.put_dir(tmp_path / "m", "out")
    store.put_bytes("out/extra", b"x")
    leftovers = [p.name for p in (tmp_path / "store").rglob(".strato-*") if p.name != ".strato-complete"]
    assert leftovers == []
