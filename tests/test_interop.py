"""Runicorn next to the real tools: git's own view of the repo, sha256sum, clones and hardlinks."""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import ok, pointer, replace


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def obj(cache: Path, oid: str) -> Path:
    return cache / "objects" / oid[:2] / oid[2:]


def data_bytes(root: Path, rels=("data", "model.pth")) -> dict[str, bytes]:
    """Content of every file under the given tracked paths."""
    found = {}
    for rel in rels:
        p = root / rel
        if p.is_file():
            found[rel] = p.read_bytes()
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    found[f.relative_to(root).as_posix()] = f.read_bytes()
    return found


def is_read_only(path: Path) -> bool:
    return not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


V1 = {"data": {"train.csv": "a,b\n1,2\n", "val.csv": "a,b\n3,4\n", "images": {"0.png": b"\x89PNG" + bytes(range(256)) * 8}},
      "model.pth": b"\x00weights v1\xff" * 100}


@pytest.fixture
def v1(tmp_repo):
    tmp_repo.gen(V1)
    ok(tmp_repo.rn("add", "data", "model.pth"))
    tmp_repo.git("add", "data.rn", "model.pth.rn", ".gitignore")
    tmp_repo.git("commit", "-q", "-m", "data v1")
    return tmp_repo


# -- git's view ------------------------------------------------------------------------------


def test_git_status_is_clean_after_add_and_committing_the_pointers(v1):
    assert v1.git("status", "--porcelain", "--untracked-files=all") == ""
    committed = set(v1.git("ls-files").split())
    assert {"data.rn", "model.pth.rn", ".gitignore", ".runicorn.yaml", ".runicorn/.gitignore"} <= committed
    assert not any(p.startswith("data/") or p == "model.pth" for p in committed)
    assert not any(p.startswith(".runicorn/cache") or "index.db" in p for p in committed)
    # running more read-only commands does not dirty git either
    for args in (["status"], ["diff"], ["ls"], ["verify"], ["doctor"], ["log", "data"]):
        ok(v1.rn(*args))
    assert v1.git("status", "--porcelain", "--untracked-files=all") == ""


def test_git_status_is_clean_after_following_the_printed_git_hint(tmp_repo):
    """`add` prints the git command to run next; running it verbatim must leave git clean."""
    tmp_repo.gen({"models": {"deep": {"net.pth": b"net"}}})
    result = ok(tmp_repo.rn("add", "models/deep/net.pth"))
    hint = [line for line in result.out.splitlines() if "git add" in line]
    assert hint, result.out
    command = hint[0].split(":", 1)[1].strip()
    for part in command.split("&&"):
        argv = shlex.split(part)
        assert argv[0] == "git"
        done = subprocess.run(argv, cwd=tmp_repo.root, capture_output=True, text=True)
        assert done.returncode == 0, f"{part!r} failed: {done.stderr}"
    assert tmp_repo.git("status", "--porcelain", "--untracked-files=all") == ""


def test_git_check_ignore_agrees(v1):
    root = v1.root
    ignored_paths = ["data", "data/train.csv", "data/images/0.png", "model.pth"]
    done = subprocess.run(["git", "check-ignore", *ignored_paths], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.split() == ignored_paths
    for p in ("data.rn", "model.pth.rn", ".runicorn.yaml", ".gitignore"):
        done = subprocess.run(["git", "check-ignore", "-q", p], cwd=root)
        assert done.returncode == 1, f"{p} should not be ignored"
    for p in (".runicorn/cache", ".runicorn/index.db", ".runicorn/tmp"):
        assert subprocess.run(["git", "check-ignore", "-q", p], cwd=root).returncode == 0, p


def test_gitignore_entry_is_exact_for_names_with_glob_characters(tmp_repo):
    tmp_repo.gen({"weird [v1] *.bin": b"w", "weird a1 x.bin": b"other"})
    ok(tmp_repo.rn("add", "weird [v1] *.bin"))
    root = tmp_repo.root
    assert subprocess.run(["git", "check-ignore", "-q", "weird [v1] *.bin"], cwd=root).returncode == 0
    # the escaped entry must not also swallow an unrelated file that the glob would match
    assert subprocess.run(["git", "check-ignore", "-q", "weird a1 x.bin"], cwd=root).returncode == 1
    assert subprocess.run(["git", "check-ignore", "-q", "weird [v1] *.bin.rn"], cwd=root).returncode == 1


# -- hashes ----------------------------------------------------------------------------------


def test_pointer_oid_equals_sha256sum(v1):
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum not installed")
    root = v1.root
    out = subprocess.run(["sha256sum", "model.pth"], cwd=root, capture_output=True, text=True, check=True).stdout
    assert pointer(root, "model.pth")["oid"] == out.split()[0]
    # files inside a directory too, and without any line-ending normalisation
    v1.gen({"crlf.txt": b"line one\r\nline two\r\n"})
    ok(v1.rn("add", "crlf.txt"))
    out = subprocess.run(["sha256sum", "crlf.txt"], cwd=root, capture_output=True, text=True, check=True).stdout
    assert pointer(root, "crlf.txt")["oid"] == out.split()[0]
    listing = {r["path"]: r["oid"] for r in __import__("json").loads(ok(v1.rn("ls", "data", "--json")).out)}
    out = subprocess.run(["sha256sum", "data/images/0.png"], cwd=root, capture_output=True, text=True, check=True).stdout
    assert listing["data/images/0.png"] == out.split()[0]


# -- history through git ---------------------------------------------------------------------


def test_data_survives_git_checkout_old_and_runicorn_checkout(v1):
    root = v1.root
    old_sha = v1.git("rev-parse", "HEAD").strip()
    old = data_bytes(root)
    ok(v1.rn("unprotect", "data/train.csv"))
    with open(root / "data" / "train.csv", "a") as f:
        f.write("5,6\n")
    (root / "data" / "val.csv").unlink()
    v1.gen({"data": {"test.csv": "a,b\n7,8\n"}})
    replace(root / "model.pth", b"weights v2")
    ok(v1.rn("add", "data", "model.pth"))
    v1.commit("data v2")
    new = data_bytes(root)
    assert new != old

    v1.git("checkout", "-q", old_sha)
    result = ok(v1.rn("checkout"))
    assert "checked out" in result.out
    assert data_bytes(root) == old
    assert v1.rn("status", "--exit-code").code == 0
    assert v1.git("status", "--porcelain") == ""

    v1.git("checkout", "-q", "main")
    ok(v1.rn("checkout"))
    assert data_bytes(root) == new
    assert v1.rn("status", "--exit-code").code == 0


def test_restore_one_path_from_an_old_commit_with_git_checkout_rev_path(v1):
    """`git checkout OLD -- model.pth.rn && runicorn checkout model.pth`, as with DVC."""
    root = v1.root
    old_sha = v1.git("rev-parse", "HEAD").strip()
    replace(root / "model.pth", b"weights v2")
    ok(v1.rn("add", "model.pth"))
    v1.commit("v2")
    v1.git("checkout", "-q", old_sha, "--", "model.pth.rn")
    ok(v1.rn("checkout", "model.pth"))
    assert (root / "model.pth").read_bytes() == V1["model.pth"]


# -- clones ----------------------------------------------------------------------------------


def _clone(v1, tmp_path) -> "object":
    assert v1.git("status", "--porcelain") == ""  # .runicorn.yaml, .runicorn/.gitignore, pointers committed
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(v1.root), str(target)], check=True, capture_output=True)
    return type(v1)(target)


def test_fresh_clone_without_cache_says_not_in_cache(v1, tmp_path):
    clone = _clone(v1, tmp_path)
    assert not (clone.root / "model.pth").exists()
    result = clone.rn("status", "--exit-code")
    assert result.code == 1
    assert "model.pth: not in cache" in result.out and "data: not in cache" in result.out
    result = clone.rn("checkout")
    assert result.code == 1 and "missing" in result.err
    assert not (clone.root / "model.pth").exists() and not (clone.root / "data").exists()


def test_fresh_clone_with_cache_dir_config_gives_identical_bytes(v1, tmp_path):
    expected = data_bytes(v1.root)
    clone = _clone(v1, tmp_path)
    origin_cache = (v1.root / ".runicorn" / "cache").resolve()
    result = ok(clone.rn("config", "set", "cache.dir", str(origin_cache), "--scope", "local"))
    assert "local" in result.out
    assert clone.git("status", "--porcelain") == ""  # the local setting is not committed
    ok(clone.rn("checkout"))
    assert data_bytes(clone.root) == expected
    assert clone.rn("status", "--exit-code").code == 0
    assert ok(clone.rn("verify"))
    assert "up to date" in ok(clone.rn("status")).out


def test_fresh_clone_with_copied_cache_and_env_var_gives_identical_bytes(v1, tmp_path, monkeypatch):
    expected = data_bytes(v1.root)
    clone = _clone(v1, tmp_path)
    copied = tmp_path / "copied-cache"
    shutil.copytree(v1.root / ".runicorn" / "cache", copied)
    monkeypatch.setenv("RUNICORN_CACHE_DIR", str(copied))
    ok(clone.rn("checkout"))
    assert data_bytes(clone.root) == expected
    # objects come from the copied cache, not from the origin's
    oid = pointer(clone.root, "model.pth")["oid"]
    assert os.stat(clone.root / "model.pth").st_ino == os.stat(obj(copied, oid)).st_ino
    assert clone.rn("status", "--exit-code").code == 0
    # and as a real process with the variable in its environment
    (clone.root / "model.pth").unlink()
    done = clone.rn_proc("checkout", env={"RUNICORN_CACHE_DIR": str(copied)})
    assert done.returncode == 0, done.stderr
    assert (clone.root / "model.pth").read_bytes() == expected["model.pth"]


def test_relative_cache_dir_in_local_config_is_relative_to_repo_root(v1, tmp_path):
    expected = data_bytes(v1.root)
    clone = _clone(v1, tmp_path)
    shutil.copytree(v1.root / ".runicorn" / "cache", clone.root / "shared-cache")
    (clone.root / ".git" / "info" / "exclude").write_text("/shared-cache\n")
    ok(clone.rn("config", "set", "cache.dir", "shared-cache", "--scope", "local"))
    (clone.root / "data").mkdir()
    ok(clone.rn("checkout", cwd=clone.root / "data"))  # run from a subfolder
    assert data_bytes(clone.root) == expected


# -- hardlinks -------------------------------------------------------------------------------


def test_hardlinks_share_inode_and_are_read_only(v1):
    root = v1.root
    cache = root / ".runicorn" / "cache"
    oid = pointer(root, "model.pth")["oid"]
    ws, cached = os.stat(root / "model.pth"), os.stat(obj(cache, oid))
    assert ws.st_ino == cached.st_ino and ws.st_dev == cached.st_dev and ws.st_nlink >= 2
    assert is_read_only(root / "model.pth") and is_read_only(obj(cache, oid))
    for rel, content in (("data/train.csv", V1["data"]["train.csv"]), ("data/images/0.png", V1["data"]["images"]["0.png"])):
        assert os.stat(root / rel).st_ino == os.stat(obj(cache, sha(content))).st_ino, rel
        assert is_read_only(root / rel), rel


def test_checkout_links_too(v1):
    root = v1.root
    shutil.rmtree(root / "data")
    ok(v1.rn("checkout"))
    cache = root / ".runicorn" / "cache"
    st = os.stat(root / "data" / "val.csv")
    assert st.st_ino == os.stat(obj(cache, sha(V1["data"]["val.csv"]))).st_ino
    assert is_read_only(root / "data" / "val.csv")


def test_identical_files_are_stored_once(tmp_repo):
    tmp_repo.gen({"d": {"a": "same", "b": "same", "c": {"d": "same"}}})
    ok(tmp_repo.rn("add", "d"))
    cache = tmp_repo.root / ".runicorn" / "cache"
    inodes = {os.stat(tmp_repo.root / p).st_ino for p in ("d/a", "d/b", "d/c/d")}
    assert inodes == {os.stat(obj(cache, sha("same"))).st_ino}
    assert tmp_repo.rn("status", "--exit-code").code == 0


def test_executable_bit_is_kept_and_never_shared_with_the_cache(tmp_repo):
    tmp_repo.gen({"tools": {"run.sh": "#!/bin/sh\necho hi\n", "notes": "n"}})
    os.chmod(tmp_repo.root / "tools" / "run.sh", 0o755)
    ok(tmp_repo.rn("add", "tools"))
    shutil.rmtree(tmp_repo.root / "tools")
    ok(tmp_repo.rn("checkout"))
    script = tmp_repo.root / "tools" / "run.sh"
    assert os.stat(script).st_mode & stat.S_IXUSR
    out = subprocess.run([str(script)], capture_output=True, text=True).stdout
    assert out == "hi\n"
    assert tmp_repo.rn("status", "--exit-code").code == 0


def test_path_that_is_a_file_in_one_commit_and_a_folder_in_another(tmp_repo):
    root = tmp_repo.root
    tmp_repo.gen({"thing": b"a file"})
    ok(tmp_repo.rn("add", "thing"))
    as_file = tmp_repo.commit("file")
    (root / "thing").unlink()
    tmp_repo.gen({"thing": {"a": "in a folder", "b": {"c": "deeper"}}})
    ok(tmp_repo.rn("add", "thing"))
    tmp_repo.commit("folder")
    tmp_repo.git("checkout", "-q", as_file)
    ok(tmp_repo.rn("checkout"))
    assert (root / "thing").is_file() and (root / "thing").read_bytes() == b"a file"
    assert tmp_repo.rn("status", "--exit-code").code == 0
    tmp_repo.git("checkout", "-q", "main")
    ok(tmp_repo.rn("checkout"))
    assert (root / "thing" / "b" / "c").read_text() == "deeper"
    assert tmp_repo.rn("status", "--exit-code").code == 0
    assert tmp_repo.git("status", "--porcelain") == ""
