"""Tests for nst_core.fileio: output-path checks and atomic, input-safe writes."""

from __future__ import annotations

import os
import stat

import pytest

from nst_core import OutputError, atomic_path, check_output_path, write_text_atomic

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------------------------------------
# check_output_path
# ---------------------------------------------------------------------------------------------

def test_check_output_path_accepts_a_new_file_and_an_existing_one(tmp_path):
    inp = tmp_path / "in.png"
    inp.write_bytes(b"x")
    assert check_output_path(tmp_path / "out.png", [inp]) == tmp_path / "out.png"
    (tmp_path / "old.png").write_bytes(b"y")
    assert check_output_path(tmp_path / "old.png", [inp]) == tmp_path / "old.png"


def test_check_output_path_refuses_an_input(tmp_path):
    inp = tmp_path / "in.png"
    inp.write_bytes(b"x")
    with pytest.raises(OutputError, match="also an input"):
        check_output_path(inp, [tmp_path / "other.png", inp])
    with pytest.raises(OutputError, match="also an input"):
        check_output_path(str(inp), [str(inp)])


def test_check_output_path_refuses_an_input_spelled_differently(tmp_path, monkeypatch):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "in.png").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    for out in ["a/./in.png", "a/b/../in.png", str(tmp_path / "a" / "in.png"), "./a//in.png"]:
        with pytest.raises(OutputError, match="also an input"):
            check_output_path(out, ["a/in.png"])
    monkeypatch.chdir(tmp_path / "a" / "b")
    with pytest.raises(OutputError, match="also an input"):
        check_output_path("../in.png", [tmp_path / "a" / "in.png"])


def test_check_output_path_refuses_an_input_behind_a_symlink(tmp_path):
    inp = tmp_path / "in.png"
    inp.write_bytes(b"x")
    link = tmp_path / "link.png"
    link.symlink_to(inp)
    with pytest.raises(OutputError, match="also an input"):
        check_output_path(link, [inp])
    with pytest.raises(OutputError, match="also an input"):
        check_output_path(inp, [link])
    folder_link = tmp_path / "alias"
    folder_link.symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(OutputError, match="also an input"):
        check_output_path(folder_link / "in.png", [inp])


def test_check_output_path_refuses_a_directory(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        check_output_path(tmp_path)


def test_check_output_path_refuses_a_missing_parent_folder(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "out.png")
    assert not (tmp_path / "missing").exists()  # and does not create it


@pytest.mark.skipif(IS_ROOT, reason="root can write into a read-only folder")
def test_check_output_path_refuses_an_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_output_path(locked / "out.png")
    finally:
        locked.chmod(0o755)


def test_check_output_path_leaves_no_files_behind(tmp_path):
    check_output_path(tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# atomic_path
# ---------------------------------------------------------------------------------------------

def test_atomic_path_replaces_target_on_success(tmp_path):
    target = tmp_path / "result.png"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".png" and tmp != target
        assert target.read_text() == "old"  # untouched until the block ends
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert not tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.png"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_path_leaves_target_untouched_and_no_temp_files_on_error(tmp_path, error):
    target = tmp_path / "result.wav"
    target.write_text("old")
    with pytest.raises(error):
        with atomic_path(target) as tmp:
            tmp.write_text("half written")
            raise error("writer failed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.wav"]


def test_atomic_path_error_with_no_existing_target_creates_nothing(tmp_path):
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "new.json"):
            raise ValueError("no")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_gives_normal_permissions_under_umask_022(tmp_path, umask_022):
    target = tmp_path / "out.png"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"data")
    plain = tmp_path / "plain.png"
    plain.write_bytes(b"data")
    assert mode(target) == 0o644 == mode(plain)  # not mkstemp's 0600


def test_atomic_path_follows_a_stricter_umask(tmp_path):
    old = os.umask(0o077)
    try:
        with atomic_path(tmp_path / "out.png") as tmp:
            tmp.write_bytes(b"data")
    finally:
        os.umask(old)
    assert mode(tmp_path / "out.png") == 0o600


# ---------------------------------------------------------------------------------------------
# write_text_atomic
# ---------------------------------------------------------------------------------------------

def test_write_text_atomic_writes_utf8_and_overwrites(tmp_path, umask_022):
    target = tmp_path / "trace.json"
    write_text_atomic(target, "first\n")
    text = "Schrödinger — 猫 ✓\n"
    write_text_atomic(target, text)
    assert target.read_bytes() == text.encode("utf-8")
    assert mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["trace.json"]


def test_write_text_atomic_missing_folder_raises_output_error(tmp_path):
    with pytest.raises(OutputError, match="cannot write"):
        write_text_atomic(tmp_path / "missing" / "trace.json", "x")
    assert list(tmp_path.iterdir()) == []
