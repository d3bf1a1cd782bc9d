"""shared/storage.py LocalStorage on a temporary folder."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from shared.storage import CHUNK, LocalStorage, ObjectTooLarge, input_key, output_key


class SmallReads(io.RawIOBase):
    """A source that hands out at most `step` bytes per read, like a slow socket."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self._step if size < 0 else min(size, self._step)
        out = self._data[self._pos:self._pos + n]
        self._pos += len(out)
        return out


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store")


def test_put_stream_reports_size_sha256_and_head(storage: LocalStorage) -> None:
    data = bytes(range(256)) * 3
    obj = storage.put_stream("inputs/j1/original", io.BytesIO(data))
    assert obj.key == "inputs/j1/original"
    assert obj.size == len(data)
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert obj.head == data[:64]
    assert storage.local_path("inputs/j1/original").read_bytes() == data
    with storage.open("inputs/j1/original") as fh:
        assert fh.read() == data


def test_head_is_assembled_across_small_reads(storage: LocalStorage) -> None:
    data = b"0123456789abcdef" * 20
    obj = storage.put_stream("k", SmallReads(data, step=10))  # type: ignore[arg-type]
    assert obj.head == data[:64]
    assert obj.size == len(data)
    assert obj.sha256 == hashlib.sha256(data).hexdigest()


def test_put_stream_short_object_head_is_whole_object(storage: LocalStorage) -> None:
    obj = storage.put_stream("k", io.BytesIO(b"abc"))
    assert obj.head == b"abc"
    assert obj.size == 3


def test_put_stream_empty(storage: LocalStorage) -> None:
    obj = storage.put_stream("empty", io.BytesIO(b""))
    assert obj.size == 0
    assert obj.head == b""
    assert obj.sha256 == hashlib.sha256(b"").hexdigest()
    assert storage.exists("empty")


def test_put_stream_overwrites(storage: LocalStorage) -> None:
    storage.put_stream("k", io.BytesIO(b"first"))
    storage.put_stream("k", io.BytesIO(b"second"))
    assert storage.local_path("k").read_bytes() == b"second"


def test_put_stream_exactly_at_limit_accepted(storage: LocalStorage) -> None:
    obj = storage.put_stream("k", io.BytesIO(b"x" * 10), max_bytes=10)
    assert obj.size == 10


@pytest.mark.parametrize(("size", "limit"), [(11, 10), (CHUNK * 2 + 1, CHUNK * 2), (5, 0)])
def test_put_stream_over_limit_raises_and_leaves_nothing(
    storage: LocalStorage, size: int, limit: int
) -> None:
    with pytest.raises(ObjectTooLarge) as info:
        storage.put_stream("inputs/j1/original", io.BytesIO(b"x" * size), max_bytes=limit)
    assert info.value.limit == limit
    assert not storage.exists("inputs/j1/original")
    assert all_files(storage.root) == []
    assert list((storage.root / ".tmp").iterdir()) == []


def test_over_limit_does_not_clobber_existing_object(storage: LocalStorage) -> None:
    storage.put_stream("k", io.BytesIO(b"keep"))
    with pytest.raises(ObjectTooLarge):
        storage.put_stream("k", io.BytesIO(b"too long"), max_bytes=4)
    assert storage.local_path("k").read_bytes() == b"keep"


INVALID_KEYS = ["../x", "/abs", "a/../b", "", "dir/", "..", "a/.."]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_refused_by_put_stream(storage: LocalStorage, key: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        storage.put_stream(key, io.BytesIO(b"data"))
    assert all_files(storage.root.parent) == []


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_refused_everywhere(storage: LocalStorage, key: str, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"data")
    with pytest.raises(ValueError):
        storage.put_file(key, source)
    with pytest.raises(ValueError):
        storage.local_path(key)
    with pytest.raises(ValueError):
        storage.exists(key)
    with pytest.raises(ValueError):
        storage.delete(key)
    assert all_files(storage.root) == []


def test_delete_returns_true_then_false_and_prunes_empty_folders(storage: LocalStorage) -> None:
    storage.put_stream("outputs/j1/a/b.jpg", io.BytesIO(b"x"))
    assert storage.delete("outputs/j1/a/b.jpg") is True
    assert not storage.exists("outputs/j1/a/b.jpg")
    assert not (storage.root / "outputs").exists()
    assert storage.root.is_dir()
    assert (storage.root / ".tmp").is_dir()
    assert storage.delete("outputs/j1/a/b.jpg") is False


def test_delete_keeps_non_empty_parents(storage: LocalStorage) -> None:
    storage.put_stream("outputs/j1/one.jpg", io.BytesIO(b"1"))
    storage.put_stream("outputs/j1/two.jpg", io.BytesIO(b"2"))
    storage.put_stream("outputs/j2/three.jpg", io.BytesIO(b"3"))
    assert storage.delete("outputs/j1/one.jpg") is True
    assert storage.exists("outputs/j1/two.jpg")
    assert storage.delete("outputs/j2/three.jpg") is True
    assert not (storage.root / "outputs" / "j2").exists()
    assert (storage.root / "outputs" / "j1").is_dir()


def test_delete_top_level_key(storage: LocalStorage) -> None:
    storage.put_stream("top", io.BytesIO(b"x"))
    assert storage.delete("top") is True
    assert storage.root.is_dir()
    assert storage.delete("top") is False


def test_list_sorted_filtered_by_prefix_and_excludes_tmp(storage: LocalStorage) -> None:
    for key in ["outputs/j1/b.jpg", "outputs/j1/a.jpg", "outputs/j2/c.png", "inputs/j1/original"]:
        storage.put_stream(key, io.BytesIO(b"x"))
    (storage.root / ".tmp" / "leftover").write_bytes(b"partial")
    assert list(storage.list("outputs/j1")) == ["outputs/j1/a.jpg", "outputs/j1/b.jpg"]
    assert list(storage.list("outputs/j1/")) == ["outputs/j1/a.jpg", "outputs/j1/b.jpg"]
    assert list(storage.list("outputs")) == ["outputs/j1/a.jpg", "outputs/j1/b.jpg", "outputs/j2/c.png"]
    assert list(storage.list("")) == [
        "inputs/j1/original", "outputs/j1/a.jpg", "outputs/j1/b.jpg", "outputs/j2/c.png",
    ]
    assert list(storage.list("missing")) == []


def test_list_refuses_escaping_prefix(storage: LocalStorage) -> None:
    with pytest.raises(ValueError):
        list(storage.list("../"))


def test_local_path_of_missing_key_raises(storage: LocalStorage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.local_path("inputs/nope/original")
    with pytest.raises(FileNotFoundError):
        storage.open("inputs/nope/original")
    assert storage.exists("inputs/nope/original") is False


def test_local_path_of_a_folder_raises(storage: LocalStorage) -> None:
    storage.put_stream("outputs/j1/a.jpg", io.BytesIO(b"x"))
    with pytest.raises(FileNotFoundError):
        storage.local_path("outputs/j1")
    assert storage.exists("outputs/j1") is False


def test_local_path_is_under_root(storage: LocalStorage) -> None:
    storage.put_stream("inputs/j1/original", io.BytesIO(b"x"))
    path = storage.local_path("inputs/j1/original")
    assert path == storage.root / "inputs" / "j1" / "original"


def test_put_file_copies_and_leaves_source(storage: LocalStorage, tmp_path: Path) -> None:
    source = tmp_path / "result.jpg"
    source.write_bytes(b"\xff\xd8jpeg bytes")
    storage.put_file("outputs/j1/t.jpg", source)
    assert storage.local_path("outputs/j1/t.jpg").read_bytes() == b"\xff\xd8jpeg bytes"
    assert source.read_bytes() == b"\xff\xd8jpeg bytes"
    assert list((storage.root / ".tmp").iterdir()) == []


def test_put_file_missing_source_leaves_nothing(storage: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        storage.put_file("k", tmp_path / "absent")
    assert all_files(storage.root) == []


def test_check_succeeds_and_leaves_nothing(storage: LocalStorage) -> None:
    storage.check()
    assert all_files(storage.root) == []


def test_check_fails_when_root_is_gone(storage: LocalStorage) -> None:
    (storage.root / ".tmp").rmdir()
    storage.root.rmdir()
    with pytest.raises(OSError):
        storage.check()


def test_constructor_creates_root_and_tmp(tmp_path: Path) -> None:
    LocalStorage(tmp_path / "deep" / "root")
    assert (tmp_path / "deep" / "root" / ".tmp").is_dir()


def test_key_helpers() -> None:
    assert input_key("abc") == "inputs/abc/original"
    assert output_key("abc", "tok", ".jpg") == "outputs/abc/tok.jpg"
