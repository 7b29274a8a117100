"""Disk full during `add` (SPEC §6 "Bad input gets a clear error and changes nothing", issue 2).

Two ways to fill the disk:

* a real, small tmpfs mounted for the test (we are root in the sandbox); the repository, its
  cache and its index live on it, so every writer — object copies, manifests, pointers, SQLite —
  meets a real ENOSPC. Skipped, with the reason, where `mount -t tmpfs` is not allowed;
* ENOSPC injected in-process into the lowest write primitives Runicorn uses (the streamed copy into
  the cache, `os.link` into the cache, `os.write` of pointer files), which always runs.

Every variant, in both `cache.link` modes (hardlink and copy), expects: a non-zero exit, exactly
one error line that says "no space left", workspace bytes and pointers untouched (a re-added
file keeps its old pointer), no partial object under a final name, and — once there is space
again — a rerun that finishes the job.
"""
from __future__ import annotations

import errno
import os
import random
import subprocess
from pathlib import Path

import pytest

from conftest import TmpRepo, git
from storage_invariants import check_cache, check_pointers, pointer_files, workspace_state

MiB = 1 << 20


# -- helpers --------------------------------------------------------------------------------------

def randbytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def snapshot(repo: TmpRepo) -> dict:
    """Everything a failed add must leave untouched: workspace bytes, pointers, .gitignore."""
    files, _ = workspace_state(repo.root, sorted(p.name for p in repo.root.iterdir()
                                                 if p.name not in (".git", ".runicorn")))
    return files


def assert_failed_cleanly(code: int, err: str, repo: TmpRepo, before: dict) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, "add succeeded on a full disk"
    assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{err}"
    assert "no space left" in lines[0].lower(), f"the error does not say the disk is full: {lines[0]}"
    assert "unexpected error" not in lines[0], f"disk full surfaced as an unexpected error: {lines[0]}"
    assert snapshot(repo) == before, "the failed add changed workspace bytes, pointers or .gitignore"
    present, temps = check_cache(repo.root / ".runicorn" / "cache")
    check_pointers(repo.root, repo.root / ".runicorn" / "cache", present)


def assert_added(repo: TmpRepo, paths: list[str]) -> None:
    for rel in paths:
        assert (repo.root / f"{rel}.rn").is_file(), f"{rel}.rn missing after the rerun"
    present, _ = check_cache(repo.root / ".runicorn" / "cache")
    check_pointers(repo.root, repo.root / ".runicorn" / "cache", present)
    status = repo.rn("status", "--exit-code")
    assert status.code == 0, status.out + status.err


def set_link_mode(repo: TmpRepo, mode: str) -> None:
    result = repo.rn("config", "set", "cache.link", mode)
    assert result.code == 0, result.err


# -- a real tmpfs ---------------------------------------------------------------------------------

class Tmpfs:
    def __init__(self, path: Path):
        self.path = path

    def resize(self, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True, capture_output=True)

    def free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int) -> None:
        """Write a filler file so that only LEAVE bytes stay free."""
        with open(self.path / "filler", "wb") as f:
            chunk = b"\0" * 4096
            while self.free() > leave:
                try:
                    f.write(chunk[: max(1, min(4096, self.free() - leave))])
                    f.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break


@pytest.fixture
def tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the injected-ENOSPC tests cover disk full here")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"`mount -t tmpfs` is not allowed here ({done.stderr.strip()}); "
                    "the injected-ENOSPC tests cover disk full")
    try:
        yield Tmpfs(mnt)
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def repo_on(fs: Tmpfs, size: str, mode: str) -> TmpRepo:
    fs.resize(size)
    root = fs.path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    repo = TmpRepo(root)
    assert repo.rn("init").code == 0
    set_link_mode(repo, mode)
    repo.commit("init runicorn")
    return repo


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_tmpfs_new_data_does_not_fit(tmpfs, mode):
    """A 5 MiB file whose cache copy cannot fit (in hardlink mode: an executable file, which is copied)."""
    repo = repo_on(tmpfs, "8m", mode)
    repo.gen({"big.bin": randbytes(5 * MiB, 1), "data": {f"f{i}.csv": randbytes(3000, i) for i in range(30)}})
    os.chmod(repo.root / "big.bin", 0o755)  # executables are never hardlinked: a copy is needed in both modes
    before = snapshot(repo)
    done = repo.rn_proc("add", "data", "big.bin")
    assert_failed_cleanly(done.returncode, done.stderr, repo, before)
    assert not list(pointer_files(repo.root))

    tmpfs.resize("32m")  # space again: the rerun finishes the job
    done = repo.rn_proc("add", "data", "big.bin")
    assert done.returncode == 0, done.stderr
    assert_added(repo, ["data", "big.bin"])


def test_tmpfs_readd_does_not_fit_keeps_old_pointer(tmpfs):
    """Copy mode: a tracked file changed; its new version does not fit; the old pointer stays."""
    repo = repo_on(tmpfs, "12m", "copy")
    repo.gen({"model.bin": randbytes(2 * MiB, 1)})
    assert repo.rn("add", "model.bin").code == 0
    repo.commit("v1")
    old_pointer = (repo.root / "model.bin.rn").read_bytes()
    (repo.root / "model.bin").write_bytes(randbytes(2 * MiB, 2))
    repo.gen({"big.bin": randbytes(5 * MiB, 3)})
    before = snapshot(repo)
    done = repo.rn_proc("add", "model.bin", "big.bin")
    assert_failed_cleanly(done.returncode, done.stderr, repo, before)
    assert (repo.root / "model.bin.rn").read_bytes() == old_pointer
    assert not (repo.root / "big.bin.rn").exists()

    tmpfs.resize("32m")
    done = repo.rn_proc("add", "model.bin", "big.bin")
    assert done.returncode == 0, done.stderr
    assert_added(repo, ["model.bin", "big.bin"])


@pytest.mark.parametrize("headroom_kib", [0, 16, 64])
def test_tmpfs_hardlink_mode_disk_already_full(tmpfs, headroom_kib):
    """Hardlink mode needs no room for the data, but manifests, pointers and the index still need some.

    With the disk filled up to HEADROOM_KIB, whatever write fails first (SQLite index, manifest
    object, pointer) must still give the one-line "no space left" error and change nothing.
    """
    repo = repo_on(tmpfs, "8m", "hardlink")
    repo.gen({"big.bin": randbytes(3 * MiB, 1), "data": {f"f{i:03}.csv": randbytes(2000, i) for i in range(300)}})
    before = snapshot(repo)
    tmpfs.fill(headroom_kib << 10)
    done = repo.rn_proc("add", "big.bin", "data")
    assert_failed_cleanly(done.returncode, done.stderr, repo, before)
    assert not list(pointer_files(repo.root))

    (tmpfs.path / "filler").unlink()
    done = repo.rn_proc("add", "big.bin", "data")
    assert done.returncode == 0, done.stderr
    assert_added(repo, ["big.bin", "data"])


# -- injected ENOSPC (always runs) ----------------------------------------------------------------

def enospc(what: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), what)


def inject_stream_copy(monkeypatch):
    """The streamed copy into the cache writes half of the file, then the disk is full."""
    from runicorn.storage import odb


    def half_then_full(fin, fout, on_bytes=None):
        data = fin.read()
        fout.write(data[: len(data) // 2])
        fout.flush()
        raise enospc(getattr(fout, "name", "cache object"))

    monkeypatch.setattr(odb, "copy_and_hash", half_then_full)


def inject_link_into_cache(monkeypatch, cache: Path):
    """os.link of a workspace file into the cache (hardlink adoption) fails with ENOSPC."""
    real = os.link

    def link(src, dst, *args, **kwargs):
        if str(cache) in str(dst):
            raise enospc(str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", link)


def inject_pointer_write(monkeypatch):
    """os.write of a pointer (atomic_write's temp file) fails with ENOSPC; objects were written fine."""
    real_open, real_write = os.open, os.write
    pointer_fds: set[int] = set()

    def open_(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        base = os.path.basename(os.fspath(path))  # atomic_write's temp: .rn-tmp-<name>-<hex>
        if base.startswith(".rn-tmp-") and base.rsplit("-", 1)[0].endswith(".rn"):
            pointer_fds.add(fd)
        return fd

    def write(fd, data):
        if fd in pointer_fds:
            pointer_fds.discard(fd)
            raise enospc("pointer")
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "write", write)


INJECTIONS = [
    ("copy", "stream-copy"), ("copy", "pointer-write"),
    ("hardlink", "link-into-cache"), ("hardlink", "pointer-write"), ("hardlink", "stream-copy"),
]


@pytest.mark.parametrize("mode,fault", INJECTIONS, ids=[f"{m}-{f}" for m, f in INJECTIONS])
@pytest.mark.parametrize("case", ["new", "readd"])
def test_injected_enospc(tmp_repo, monkeypatch, mode, fault, case):
    """ENOSPC from one write primitive during `add` of new data, or a re-add of changed tracked data."""
    set_link_mode(tmp_repo, mode)
    tmp_repo.gen({"model.bin": randbytes(MiB, 1), "data": {f"f{i}.csv": randbytes(3000, i) for i in range(20)}})
    if fault == "stream-copy" and mode == "hardlink":
        os.chmod(tmp_repo.root / "model.bin", 0o755)  # an executable is copied even in hardlink mode
    paths = ["model.bin", "data"]
    if case == "readd":
        assert tmp_repo.rn("add", *paths).code == 0
        tmp_repo.commit("v1")
        tmp_repo.rn("unprotect", *paths)
        (tmp_repo.root / "model.bin").write_bytes(randbytes(MiB, 2))
        (tmp_repo.root / "data" / "f3.csv").write_bytes(b"changed\n")
        (tmp_repo.root / "data" / "new.csv").write_bytes(b"new\n")
    before = snapshot(tmp_repo)
    cache = tmp_repo.root / ".runicorn" / "cache"
    with monkeypatch.context() as m:
        if fault == "stream-copy":
            inject_stream_copy(m)
        elif fault == "link-into-cache":
            inject_link_into_cache(m, cache)
        else:
            inject_pointer_write(m)
        result = tmp_repo.rn("add", *paths)
    assert_failed_cleanly(result.code, result.err, tmp_repo, before)
    _, temps = check_cache(cache)
    assert not temps, f"temp files left in the cache after the failed add: {temps}"

    result = tmp_repo.rn("add", *paths)
    assert result.code == 0, result.err
    assert_added(tmp_repo, paths)
