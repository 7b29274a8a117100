"""Every command of the data-versioning slice, end to end: real git, real files, real SQLite, no mocks.

Conventions used below:
- a tracked file is *changed* the way a user's tool would after `unprotect` or as a fresh write:
  the old path is unlinked first (writing in place into a hardlinked, read-only file would be an
  in-place edit of the cache object, which is a different scenario);
- exit codes are the ones of SPEC §3 (0 ok, 1 error, 2 usage, 3 not a repo, 5 integrity).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ok, pointer, replace

# -- helpers ---------------------------------------------------------------------------------


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def obj(root: Path, oid: str) -> Path:
    """Where the default cache keeps OID (SPEC §2: objects/<2>/<62>)."""
    return root / ".runicorn" / "cache" / "objects" / oid[:2] / oid[2:]


def cache_oids(root: Path) -> set[str]:
    base = root / ".runicorn" / "cache" / "objects"
    return {p.parent.name + p.name for p in base.glob("??/*") if p.is_file() and len(p.parent.name + p.name) == 64}


def workspace_bytes(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file (content and mode) outside .git and .runicorn, plus every directory."""
    found: dict[str, tuple[bytes, int]] = {}
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".git", ".runicorn")]
        rel_top = Path(top).relative_to(root)
        for d in dirs:
            found[str(rel_top / d) + "/"] = (b"", 0)
        for f in files:
            p = Path(top) / f
            found[str(rel_top / f)] = (p.read_bytes(), stat.S_IMODE(os.lstat(p).st_mode))
    return found


def js(result):
    assert result.code == 0, f"exit {result.code}: {result.err}"
    return json.loads(result.out)


DATA_V1 = {"data": {"a.csv": "x,y\n1,2\n", "b.csv": "x,y\n3,4\n", "sub": {"c.bin": b"\x00\x01" * 2048}}}


@pytest.fixture
def tracked(tmp_repo):
    """A repo with data/ (3 files, one in a subfolder) and model.pth tracked and committed as v1."""
    tmp_repo.gen(DATA_V1)
    tmp_repo.gen({"model.pth": b"weights-v1"})
    ok(tmp_repo.rn("add", "data", "model.pth"))
    tmp_repo.commit("v1")
    return tmp_repo


# -- init ------------------------------------------------------------------------------------


def test_init_is_idempotent_and_changes_nothing_the_second_time(tmp_repo):
    ok(tmp_repo.rn("config", "set", "core.jobs", "3"))
    tmp_repo.commit("settings")
    before = {p: (tmp_repo.root / p).read_bytes() for p in (".runicorn.yaml", ".runicorn/.gitignore")}
    result = ok(tmp_repo.rn("init"))
    assert "already a Runicorn repository" in result.out and "nothing changed" in result.out
    assert {p: (tmp_repo.root / p).read_bytes() for p in before} == before
    assert tmp_repo.git("status", "--porcelain") == ""
    assert tmp_repo.rn("config", "get", "core.jobs").out.strip() == "3"


def test_init_creates_the_layout_and_git_ignores_machine_local_parts(tmp_path):
    from conftest import TmpRepo, git

    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    repo = TmpRepo(root)
    result = ok(repo.rn("init"))
    assert "Initialised Runicorn" in result.out
    assert (root / ".runicorn.yaml").is_file() and (root / ".runicorn" / ".gitignore").is_file()
    assert (root / ".runicorn" / "index.db").is_file()
    # only the committed parts show up for git
    untracked = set(repo.git("status", "--porcelain", "-uall").splitlines())
    assert untracked == {"?? .runicorn.yaml", "?? .runicorn/.gitignore"}


def test_init_outside_git_exits_3_and_creates_nothing(tmp_path, tmp_repo):
    plain = tmp_path / "not-git"
    plain.mkdir()
    result = tmp_repo.rn("init", cwd=plain)
    assert result.code == 3
    assert "not inside a git repository" in result.err and "git init" in result.err
    assert list(plain.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["status"], ["add", "f.txt"], ["checkout"], ["commit"], ["diff"], ["ls"], ["log", "f.txt"],
    ["gc", "--dry-run"], ["verify"], ["unprotect", "f.txt"], ["get", "f.txt"],
])
def test_commands_in_a_git_repo_without_init_exit_3(tmp_path, args):
    from conftest import TmpRepo, git

    root = tmp_path / "gitonly"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "f.txt").write_text("hello")
    repo = TmpRepo(root)
    result = repo.rn(*args)
    assert result.code == 3, (result.code, result.err)
    assert "not a Runicorn repository" in result.err and "runicorn init" in result.err
    assert not (root / ".runicorn").exists() and not (root / "f.txt.rn").exists()


# -- add -------------------------------------------------------------------------------------


def test_add_file_writes_pointer_caches_object_and_ignores_data(tmp_repo):
    tmp_repo.gen({"model.pth": b"weights"})
    result = ok(tmp_repo.rn("add", "model.pth"))
    assert "added model.pth" in result.out and "model.pth.rn" in result.out
    assert "git add" in result.out  # tells the user the next step
    p = pointer(tmp_repo.root, "model.pth")
    assert p == {"runicorn": 1, "path": "model.pth", "kind": "file", "hash": "sha256",
                 "oid": sha(b"weights"), "size": 7}
    text = (tmp_repo.root / "model.pth.rn").read_text()
    assert text.index("runicorn:") < text.index("path:") < text.index("kind:") < text.index("hash:") \
        < text.index("oid:") < text.index("size:")  # canonical key order
    assert obj(tmp_repo.root, sha(b"weights")).read_bytes() == b"weights"
    assert "/model.pth" in (tmp_repo.root / ".gitignore").read_text().splitlines()


def test_add_directory_records_manifest_and_file_count(tmp_repo):
    tmp_repo.gen(DATA_V1)
    result = ok(tmp_repo.rn("add", "data"))
    assert "added data (3 files" in result.out
    p = pointer(tmp_repo.root, "data")
    assert p["kind"] == "dir" and p["files"] == 3 and p["path"] == "data"
    assert p["size"] == len("x,y\n1,2\n") + len("x,y\n3,4\n") + 4096
    cached = cache_oids(tmp_repo.root)
    assert p["oid"] in cached  # the root manifest is an object
    for content in ("x,y\n1,2\n", "x,y\n3,4\n", b"\x00\x01" * 2048):
        assert sha(content) in cached
    assert "/data" in (tmp_repo.root / ".gitignore").read_text().splitlines()
    rows = js(tmp_repo.rn("ls", "data", "--json"))
    assert {r["path"] for r in rows} == {"data", "data/a.csv", "data/b.csv", "data/sub/c.bin"}


def test_add_several_paths_at_once_in_nested_folders(tmp_repo):
    tmp_repo.gen({"one.bin": b"1", "models": {"deep": {"two.bin": b"22"}}, "sets": {"s": {"x": "x"}}})
    result = ok(tmp_repo.rn("add", "one.bin", "models/deep/two.bin", "sets"))
    for rel in ("one.bin", "models/deep/two.bin", "sets"):
        assert (tmp_repo.root / (rel + ".rn")).is_file(), rel
        assert f"added {rel}" in result.out
    assert pointer(tmp_repo.root, "models/deep/two.bin")["oid"] == sha(b"22")
    # DVC style: the entry lives in the .gitignore next to the data
    assert "/two.bin" in (tmp_repo.root / "models" / "deep" / ".gitignore").read_text().splitlines()
    root_ignores = (tmp_repo.root / ".gitignore").read_text().splitlines()
    assert "/one.bin" in root_ignores and "/sets" in root_ignores


def test_add_path_inside_tracked_dir_updates_that_dir(tracked):
    root = tracked.root
    old = pointer(root, "data")
    tracked.gen({"data": {"sub": {"new.txt": "fresh"}}})
    result = ok(tracked.rn("add", "data/sub/new.txt"))
    assert "added data " in result.out or "added data (" in result.out
    assert not (root / "data" / "sub" / "new.txt.rn").exists()
    assert not (root / "data" / "sub" / ".gitignore").exists()
    new = pointer(root, "data")
    assert new["oid"] != old["oid"] and new["files"] == 4
    assert sha("fresh") in cache_oids(root)
    assert ok(tracked.rn("status", "--exit-code"))


def test_re_add_after_change_records_new_version_and_unchanged_is_reported(tracked):
    root = tracked.root
    again = ok(tracked.rn("add", "model.pth"))
    assert "unchanged model.pth" in again.out
    replace(root / "model.pth", b"weights-v2")
    result = ok(tracked.rn("add", "model.pth"))
    assert "added model.pth" in result.out and "1 new objects" in result.out
    assert pointer(root, "model.pth")["oid"] == sha(b"weights-v2")
    assert obj(root, sha(b"weights-v1")).read_bytes() == b"weights-v1"  # old version still cached
    assert (root / ".gitignore").read_text().splitlines().count("/model.pth") == 1  # not duplicated


def test_add_honours_runicornignore_for_directories(tmp_repo):
    tmp_repo.gen({".runicornignore": "*.tmp\ndata/scratch/\n",
                  "data": {"keep.csv": "k", "junk.tmp": "j", "scratch": {"big": "b"}, "sub": {"x.tmp": "t", "y": "y"}}})
    ok(tmp_repo.rn("add", "data"))
    p = pointer(tmp_repo.root, "data")
    assert p["files"] == 2
    listed = {r["path"] for r in js(tmp_repo.rn("ls", "data", "--json"))}
    assert listed == {"data", "data/keep.csv", "data/sub/y"}
    assert sha("j") not in cache_oids(tmp_repo.root) and sha("b") not in cache_oids(tmp_repo.root)
    assert (tmp_repo.root / "data" / "junk.tmp").read_text() == "j"  # left alone in the workspace


IGNORED_TREE = {".runicornignore": "*.tmp\ndata/scratch/\n",
                "data": {"keep.csv": "k", "junk.tmp": "j", "scratch": {"big": "b"}}}


def test_status_and_diff_honour_runicornignore(tmp_repo):
    tmp_repo.gen(IGNORED_TREE)
    ok(tmp_repo.rn("add", "data"))
    tmp_repo.commit("data")
    result = tmp_repo.rn("status", "--exit-code")
    assert result.code == 0, f"ignored files reported as changes:\n{result.out}"
    assert tmp_repo.rn("diff", "--exit-code").code == 0


def test_checkout_leaves_runicornignored_files_alone(tmp_repo):
    tmp_repo.gen(IGNORED_TREE)
    ok(tmp_repo.rn("add", "data"))
    (tmp_repo.root / "data" / "keep.csv").unlink()
    result = tmp_repo.rn("checkout")
    assert result.code == 0, result.err
    assert (tmp_repo.root / "data" / "keep.csv").read_text() == "k"
    assert (tmp_repo.root / "data" / "junk.tmp").read_text() == "j"
    assert (tmp_repo.root / "data" / "scratch" / "big").read_text() == "b"


def test_add_json_shape(tmp_repo):
    tmp_repo.gen({"data": {"a": "1", "b": "2"}, "f.bin": b"f"})
    rows = js(tmp_repo.rn("add", "data", "f.bin", "--json"))
    assert isinstance(rows, list) and len(rows) == 2
    by = {r["path"]: r for r in rows}
    keys = {"path", "kind", "oid", "size", "files", "changed", "new_objects"}
    for r in rows:
        assert keys <= set(r), r
    assert by["data"]["kind"] == "dir" and by["data"]["files"] == 2 and by["data"]["size"] == 2
    assert by["f.bin"]["kind"] == "file" and by["f.bin"]["oid"] == sha("f") and by["f.bin"]["size"] == 1
    assert all(r["changed"] is True for r in rows)
    assert by["data"]["oid"] == pointer(tmp_repo.root, "data")["oid"]
    again = js(tmp_repo.rn("add", "data", "--json"))
    assert again[0]["changed"] is False and again[0]["new_objects"] == 0


def test_add_missing_path_fails_and_writes_nothing(tmp_repo):
    result = tmp_repo.rn("add", "nope.bin")
    assert result.code == 1
    assert "nope.bin does not exist" in result.err
    assert not (tmp_repo.root / "nope.bin.rn").exists() and not (tmp_repo.root / ".gitignore").exists()


# -- status ----------------------------------------------------------------------------------


def test_status_clean(tracked):
    result = ok(tracked.rn("status"))
    assert "up to date" in result.out
    assert tracked.rn("status", "--exit-code").code == 0


def test_status_nothing_tracked(tmp_repo):
    result = ok(tmp_repo.rn("status"))
    assert "Nothing is tracked" in result.out


def test_status_modified_lists_file_level_changes_inside_dirs(tracked):
    root = tracked.root
    ok(tracked.rn("unprotect", "data/a.csv"))
    with open(root / "data" / "a.csv", "a") as f:
        f.write("5,6\n")
    (root / "data" / "b.csv").unlink()
    tracked.gen({"data": {"sub": {"d.txt": "new"}}})
    result = tracked.rn("status")
    assert result.code == 0  # without --exit-code status only reports
    assert "data: modified" in result.out
    assert "modified: data/a.csv" in result.out
    assert "deleted: data/b.csv" in result.out
    assert "added: data/sub/d.txt" in result.out
    assert "model.pth" not in result.out  # clean paths are not listed
    assert tracked.rn("status", "--exit-code").code == 1
    rows = js(tracked.rn("status", "--json"))
    by = {r["path"]: r for r in rows}
    assert by["model.pth"] == {"path": "model.pth", "kind": "file", "state": "clean", "changes": []}
    assert by["data"]["state"] == "modified" and by["data"]["kind"] == "dir"
    assert sorted((c["path"], c["change"]) for c in by["data"]["changes"]) == [
        ("a.csv", "modified"), ("b.csv", "deleted"), ("sub/d.txt", "added")]


def test_status_modified_file(tracked):
    replace(tracked.root / "model.pth", b"other")
    result = tracked.rn("status", "--exit-code")
    assert result.code == 1 and "model.pth: modified" in result.out


def test_status_deleted_and_not_in_cache(tracked):
    root = tracked.root
    (root / "model.pth").unlink()
    import shutil
    shutil.rmtree(root / "data")
    result = tracked.rn("status", "--exit-code")
    assert result.code == 1
    assert "model.pth: deleted" in result.out and "data: deleted" in result.out
    obj(root, sha(b"weights-v1")).unlink()
    result = tracked.rn("status", "model.pth", "--json")
    assert js(result) == [{"path": "model.pth", "kind": "file", "state": "not in cache", "changes": []}]
    assert "model.pth: not in cache" in tracked.rn("status").out


def test_status_with_path_inside_tracked_dir_reports_the_dir(tracked):
    rows = js(tracked.rn("status", "data/sub/c.bin", "--json"))
    assert [r["path"] for r in rows] == ["data"]
    result = tracked.rn("status", "untracked.txt")
    assert result.code == 1 and "not tracked" in result.err


# -- commit ----------------------------------------------------------------------------------


def test_commit_after_unprotect_and_edit(tracked):
    root = tracked.root
    ok(tracked.rn("unprotect", "model.pth"))
    with open(root / "model.pth", "ab") as f:
        f.write(b"+tuned")
    assert tracked.rn("status", "--exit-code").code == 1
    result = ok(tracked.rn("commit"))
    assert "committed model.pth" in result.out
    assert "unchanged data" in result.out
    assert pointer(root, "model.pth")["oid"] == sha(b"weights-v1+tuned")
    assert obj(root, sha(b"weights-v1+tuned")).read_bytes() == b"weights-v1+tuned"
    assert obj(root, sha(b"weights-v1")).read_bytes() == b"weights-v1"  # old version intact
    assert tracked.rn("status", "--exit-code").code == 0


def test_commit_dir_with_path_argument(tracked):
    root = tracked.root
    ok(tracked.rn("unprotect", "data"))
    replace(root / "data" / "b.csv", "x,y\n9,9\n")
    result = ok(tracked.rn("commit", "data"))
    assert "committed data" in result.out and "model.pth" not in result.out
    rows = {r["path"]: r for r in js(tracked.rn("ls", "data", "--json"))}
    assert rows["data/b.csv"]["oid"] == sha("x,y\n9,9\n")


def test_commit_of_deleted_path_refuses(tracked):
    (tracked.root / "model.pth").unlink()
    before = (tracked.root / "model.pth.rn").read_bytes()
    result = tracked.rn("commit", "model.pth")
    assert result.code == 1 and "missing from the workspace" in result.err and "runicorn checkout" in result.err
    assert (tracked.root / "model.pth.rn").read_bytes() == before


# -- checkout --------------------------------------------------------------------------------


def test_checkout_restores_deleted_files_and_dirs(tracked):
    import shutil
    root = tracked.root
    expected = workspace_bytes(root)
    (root / "model.pth").unlink()
    shutil.rmtree(root / "data")
    result = ok(tracked.rn("checkout"))
    assert "checked out data (3 linked" in result.out and "checked out model.pth (1 linked" in result.out
    assert workspace_bytes(root) == expected
    assert tracked.rn("status", "--exit-code").code == 0
    assert "already matches" in ok(tracked.rn("checkout")).out


def test_checkout_single_path_inside_dir(tracked):
    root = tracked.root
    (root / "data" / "sub" / "c.bin").unlink()
    (root / "model.pth").unlink()
    ok(tracked.rn("checkout", "data/sub/c.bin"))
    assert (root / "data" / "sub" / "c.bin").read_bytes() == b"\x00\x01" * 2048
    assert not (root / "model.pth").exists()  # only the named tracked path was touched


def test_checkout_removes_extra_files_of_a_newer_version(tracked):
    root = tracked.root
    v1 = tracked.git("rev-parse", "HEAD").strip()
    tracked.gen({"data": {"extra.csv": "e"}})
    ok(tracked.rn("add", "data"))
    tracked.commit("v2 with extra")
    tracked.git("checkout", "-q", v1)
    result = ok(tracked.rn("checkout"))
    assert "1 removed" in result.out
    assert not (root / "data" / "extra.csv").exists()
    assert tracked.rn("status", "--exit-code").code == 0


def test_checkout_restores_empty_subfolder_and_status_is_clean(tmp_repo):
    import shutil
    tmp_repo.gen({"data": {"a": "1"}})
    (tmp_repo.root / "data" / "empty").mkdir()
    ok(tmp_repo.rn("add", "data"))
    assert tmp_repo.rn("status", "--exit-code").code == 0
    shutil.rmtree(tmp_repo.root / "data")
    ok(tmp_repo.rn("checkout"))
    result = tmp_repo.rn("status", "--exit-code")
    assert result.code == 0, f"status after checkout is not clean:\n{result.out}"


def test_checkout_refuses_to_overwrite_uncommitted_changes_and_leaves_workspace_identical(tracked):
    root = tracked.root
    v1 = tracked.git("rev-parse", "HEAD").strip()
    replace(root / "model.pth", b"weights-v2")
    ok(tracked.rn("unprotect", "data/a.csv"))
    replace(root / "data" / "a.csv", "x,y\n7,7\n")
    ok(tracked.rn("add", "model.pth", "data"))
    tracked.commit("v2")
    # uncommitted edits on top of v2, then the user switches git back to v1
    ok(tracked.rn("unprotect", "model.pth", "data/b.csv"))
    replace(root / "model.pth", b"unsaved work")
    replace(root / "data" / "b.csv", "unsaved rows\n")
    tracked.git("checkout", "-q", v1)
    before = workspace_bytes(root)
    result = tracked.rn("checkout")
    assert result.code != 0
    assert "uncommitted changes" in result.err and "--force" in result.err
    assert "model.pth" in result.err and "data/b.csv" in result.err
    assert workspace_bytes(root) == before

    result = ok(tracked.rn("checkout", "--force"))
    assert (root / "model.pth").read_bytes() == b"weights-v1"
    assert (root / "data" / "a.csv").read_text() == "x,y\n1,2\n"
    assert (root / "data" / "b.csv").read_text() == "x,y\n3,4\n"
    assert tracked.rn("status", "--exit-code").code == 0


def test_checkout_refuses_to_delete_untracked_extra_file_without_force(tracked):
    root = tracked.root
    tracked.gen({"data": {"notes.txt": "mine"}})
    before = workspace_bytes(root)
    result = tracked.rn("checkout")
    assert result.code != 0 and "data/notes.txt" in result.err
    assert workspace_bytes(root) == before
    ok(tracked.rn("checkout", "--force"))
    assert not (root / "data" / "notes.txt").exists()
    assert tracked.rn("status", "--exit-code").code == 0


def test_checkout_with_missing_object_fails_naming_it_and_changes_nothing(tracked):
    root = tracked.root
    (root / "model.pth").unlink()
    obj(root, sha(b"weights-v1")).unlink()
    before = workspace_bytes(root)
    result = tracked.rn("checkout")
    assert result.code == 1
    assert "missing" in result.err and sha(b"weights-v1")[:12] in result.err
    assert workspace_bytes(root) == before


# -- unprotect -------------------------------------------------------------------------------


def test_unprotect_file_gives_private_writable_copy_and_cache_is_untouched(tracked):
    root = tracked.root
    oid = sha(b"weights-v1")
    cached = obj(root, oid)
    assert os.stat(root / "model.pth").st_ino == os.stat(cached).st_ino
    result = ok(tracked.rn("unprotect", "model.pth"))
    assert "1 file(s)" in result.out and "runicorn add" in result.out
    st = os.stat(root / "model.pth")
    assert st.st_mode & stat.S_IWUSR
    assert st.st_ino != os.stat(cached).st_ino and st.st_nlink == 1
    assert (root / "model.pth").read_bytes() == b"weights-v1"
    with open(root / "model.pth", "r+b") as f:  # in-place edit, as an editor would do
        f.write(b"W")
    assert cached.read_bytes() == b"weights-v1" and sha(cached.read_bytes()) == oid
    assert not os.stat(cached).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert "model.pth: modified" in tracked.rn("status").out


def test_unprotect_directory_makes_every_file_writable(tracked):
    root = tracked.root
    result = ok(tracked.rn("unprotect", "data"))
    assert "3 file(s)" in result.out
    for rel in ("data/a.csv", "data/b.csv", "data/sub/c.bin"):
        st = os.stat(root / rel)
        assert st.st_mode & stat.S_IWUSR and st.st_nlink == 1, rel
    assert tracked.rn("status", "--exit-code").code == 0  # same content: still clean
    assert ok(tracked.rn("verify", "--cache"))


def test_unprotect_untracked_path_fails(tracked):
    tracked.gen({"loose.txt": "x"})
    result = tracked.rn("unprotect", "loose.txt")
    assert result.code == 1 and "not tracked" in result.err


# -- diff ------------------------------------------------------------------------------------


def _make_v2(repo):
    root = repo.root
    ok(repo.rn("unprotect", "data/a.csv"))
    replace(root / "data" / "a.csv", "x,y\n1,2\n5,6\n")
    (root / "data" / "b.csv").unlink()
    repo.gen({"data": {"sub": {"d.txt": "dd"}}})
    replace(root / "model.pth", b"weights-v2")


def test_diff_head_vs_workspace_file_level(tracked):
    assert "No data changes" in ok(tracked.rn("diff")).out
    assert tracked.rn("diff", "--exit-code").code == 0
    _make_v2(tracked)
    result = tracked.rn("diff")
    assert result.code == 0
    lines = [line.split() for line in result.out.splitlines()]
    changes = {(w[1], w[0]) for w in lines if w}
    assert changes == {("data/a.csv", "modified"), ("data/b.csv", "deleted"), ("data/sub/d.txt", "added"),
                       ("model.pth", "modified")}
    assert tracked.rn("diff", "--exit-code").code == 1
    rows = js(tracked.rn("diff", "--json"))
    by = {r["path"]: r for r in rows}
    assert set(by) == {"data/a.csv", "data/b.csv", "data/sub/d.txt", "model.pth"}
    assert by["model.pth"] == {"path": "model.pth", "change": "modified", "old_oid": sha(b"weights-v1"),
                               "new_oid": sha(b"weights-v2"), "old_size": 10, "new_size": 10}
    assert by["data/b.csv"]["new_oid"] is None and by["data/b.csv"]["old_oid"] == sha("x,y\n3,4\n")
    assert by["data/sub/d.txt"]["old_oid"] is None and by["data/sub/d.txt"]["new_size"] == 2


def test_diff_between_two_revisions(tracked):
    v1 = tracked.git("rev-parse", "HEAD").strip()
    _make_v2(tracked)
    ok(tracked.rn("add", "data", "model.pth"))
    tracked.gen({"new.bin": b"n"})
    ok(tracked.rn("add", "new.bin"))
    v2 = tracked.commit("v2")
    rows = js(tracked.rn("diff", v1, v2, "--json"))
    assert {(r["path"], r["change"]) for r in rows} == {
        ("data/a.csv", "modified"), ("data/b.csv", "deleted"), ("data/sub/d.txt", "added"),
        ("model.pth", "modified"), ("new.bin", "added")}
    back = js(tracked.rn("diff", v2, v1, "--json"))
    assert {(r["path"], r["change"]) for r in back} == {
        ("data/a.csv", "modified"), ("data/b.csv", "added"), ("data/sub/d.txt", "deleted"),
        ("model.pth", "modified"), ("new.bin", "deleted")}
    assert tracked.rn("diff", v1, v2, "--exit-code").code == 1
    assert tracked.rn("diff", v2, v2, "--exit-code").code == 0
    # HEAD against the workspace after committing: nothing
    assert tracked.rn("diff", "--exit-code").code == 0
    # one revision: that revision against the workspace
    one = js(tracked.rn("diff", v1, "--json"))
    assert {(r["path"], r["change"]) for r in one} == {(r["path"], r["change"]) for r in rows}


def test_diff_unknown_revision_is_an_error(tracked):
    result = tracked.rn("diff", "no-such-rev")
    assert result.code == 1 and "no-such-rev" in result.err


# -- log -------------------------------------------------------------------------------------


def _commit_at(repo, message: str, when: int, monkeypatch) -> str:
    monkeypatch.setenv("GIT_AUTHOR_DATE", f"@{when} +0000")
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"@{when} +0000")
    return repo.commit(message)


def test_log_lists_versions_newest_first(tmp_repo, monkeypatch):
    root = tmp_repo.root
    tmp_repo.gen({"m.bin": b"one"})
    ok(tmp_repo.rn("add", "m.bin"))
    c1 = _commit_at(tmp_repo, "first", 1_700_000_000, monkeypatch)
    tmp_repo.gen({"other.txt": "unrelated"})
    _commit_at(tmp_repo, "unrelated", 1_700_000_100, monkeypatch)
    replace(root / "m.bin", b"two!")
    ok(tmp_repo.rn("add", "m.bin"))
    c2 = _commit_at(tmp_repo, "second", 1_700_000_200, monkeypatch)
    tmp_repo.git("rm", "-q", "m.bin.rn")
    c3 = _commit_at(tmp_repo, "dropped", 1_700_000_300, monkeypatch)
    rows = js(tmp_repo.rn("log", "m.bin", "--json"))
    assert [r["commit"] for r in rows] == [c3, c2, c1]
    assert [r["change"] for r in rows] == ["deleted", "modified", "added"]
    assert rows[1]["oid"] == sha(b"two!") and rows[1]["size"] == 4
    assert rows[2]["oid"] == sha(b"one") and rows[2]["size"] == 3
    assert rows[2]["message"] == "first" and rows[2]["author"] == "Test" and rows[2]["date"] == 1_700_000_000
    text = ok(tmp_repo.rn("log", "m.bin")).out.splitlines()
    assert len(text) == 3
    assert text[0].startswith(c3[:10]) and "dropped" in text[0]
    assert text[2].startswith(c1[:10]) and "added" in text[2] and sha(b"one")[:12] in text[2]


def test_log_directory_history(tracked):
    _make_v2(tracked)
    ok(tracked.rn("add", "data"))
    c2 = tracked.commit("v2")
    rows = js(tracked.rn("log", "data", "--json"))
    assert rows[0]["commit"] == c2 and rows[0]["change"] == "modified" and rows[0]["kind"] == "dir"
    assert rows[0]["files"] == 3 and rows[0]["oid"] == pointer(tracked.root, "data")["oid"]
    assert rows[-1]["change"] == "added"


def test_log_is_newest_first_when_commits_share_a_timestamp(tmp_repo, monkeypatch):
    """Scripts and CI commit many times a second; the order must follow history, not the clock."""
    root = tmp_repo.root
    shas = []
    for i in range(6):
        replace(root / "f.bin", f"version {i}")
        ok(tmp_repo.rn("add", "f.bin"))
        shas.append(_commit_at(tmp_repo, f"v{i}", 1_700_000_000, monkeypatch))
    rows = js(tmp_repo.rn("log", "f.bin", "--json"))
    assert [r["commit"] for r in rows] == list(reversed(shas))
    assert [r["change"] for r in rows] == ["modified"] * 5 + ["added"]
    assert rows[-1]["oid"] == sha("version 0")


def test_log_untracked_path_errors(tracked):
    result = tracked.rn("log", "never.bin")
    assert result.code == 1 and "not tracked" in result.err


# -- ls --------------------------------------------------------------------------------------


def test_ls_workspace_and_rev(tracked):
    v1 = tracked.git("rev-parse", "HEAD").strip()
    rows = js(tracked.rn("ls", "--json"))
    by = {r["path"]: r for r in rows}
    assert set(by) == {"data", "data/a.csv", "data/b.csv", "data/sub/c.bin", "model.pth"}
    assert by["data/sub/c.bin"] == {"path": "data/sub/c.bin", "kind": "file", "oid": sha(b"\x00\x01" * 2048),
                                    "size": 4096, "tracked": "data"}
    assert by["model.pth"]["kind"] == "file" and by["data"]["kind"] == "dir"
    text = ok(tracked.rn("ls")).out
    assert "data/sub/c.bin" in text and "model.pth" in text

    _make_v2(tracked)
    ok(tracked.rn("add", "data", "model.pth"))
    tracked.commit("v2")
    now = {r["path"] for r in js(tracked.rn("ls", "--json"))}
    assert "data/b.csv" not in now and "data/sub/d.txt" in now
    old = {r["path"]: r for r in js(tracked.rn("ls", "--rev", v1, "--json"))}
    assert "data/b.csv" in old and "data/sub/d.txt" not in old
    assert old["model.pth"]["oid"] == sha(b"weights-v1")


def test_ls_path_inside_dir(tracked):
    v1 = tracked.git("rev-parse", "HEAD").strip()
    rows = js(tracked.rn("ls", "data/sub", "--json"))
    assert [(r["path"], r["kind"]) for r in rows] == [("data/sub", "dir"), ("data/sub/c.bin", "file")]
    one = js(tracked.rn("ls", "data/a.csv", "--rev", v1, "--json"))
    assert one == [{"path": "data/a.csv", "kind": "file", "oid": sha("x,y\n1,2\n"), "size": 8, "tracked": "data"}]
    result = tracked.rn("ls", "data/nothing-here")
    assert result.code == 1 and "data/nothing-here" in result.err


# -- get -------------------------------------------------------------------------------------


def test_get_old_version_without_touching_workspace(tracked, tmp_path):
    root = tracked.root
    v1 = tracked.git("rev-parse", "HEAD").strip()
    _make_v2(tracked)
    ok(tracked.rn("add", "data", "model.pth"))
    tracked.commit("v2")
    before = workspace_bytes(root)
    out_file = tmp_path / "old-model.pth"
    result = ok(tracked.rn("get", "model.pth", "--rev", v1, "-o", str(out_file)))
    assert str(out_file) in result.out
    assert out_file.read_bytes() == b"weights-v1"
    st = os.stat(out_file)
    assert st.st_mode & stat.S_IWUSR and st.st_ino != os.stat(obj(root, sha(b"weights-v1"))).st_ino
    out_dir = tmp_path / "old-data"
    ok(tracked.rn("get", "data", "--rev", v1, "-o", str(out_dir)))
    assert (out_dir / "a.csv").read_text() == "x,y\n1,2\n" and (out_dir / "b.csv").read_text() == "x,y\n3,4\n"
    assert (out_dir / "sub" / "c.bin").read_bytes() == b"\x00\x01" * 2048
    assert not (out_dir / "sub" / "d.txt").exists()
    inner = tmp_path / "b.csv"
    ok(tracked.rn("get", "data/b.csv", "--rev", v1, "-o", str(inner)))
    assert inner.read_text() == "x,y\n3,4\n"
    assert workspace_bytes(root) == before
    assert tracked.rn("status", "--exit-code").code == 0


def test_get_refuses_existing_output(tracked, tmp_path):
    out_file = tmp_path / "exists.bin"
    out_file.write_bytes(b"precious")
    result = tracked.rn("get", "model.pth", "--rev", "HEAD", "-o", str(out_file))
    assert result.code == 1 and "already exists" in result.err and str(out_file) in result.err
    assert out_file.read_bytes() == b"precious"
    ok(tracked.rn("get", "model.pth", "--rev", "HEAD", "-o", str(out_file), "--force"))
    assert out_file.read_bytes() == b"weights-v1"


def test_get_path_not_tracked_at_rev(tracked, tmp_path):
    v1 = tracked.git("rev-parse", "HEAD").strip()
    tracked.gen({"late.bin": b"late"})
    ok(tracked.rn("add", "late.bin"))
    tracked.commit("late")
    result = tracked.rn("get", "late.bin", "--rev", v1, "-o", str(tmp_path / "x"))
    assert result.code == 1 and "not tracked at" in result.err
    assert not (tmp_path / "x").exists()


# -- gc --------------------------------------------------------------------------------------


def _orphan(repo, name: str = "model.pth") -> str:
    """Record a version of NAME, then go back to the committed one: that version is unreachable."""
    committed = (repo.root / name).read_bytes()
    replace(repo.root / name, b"never committed")
    ok(repo.rn("add", name))
    replace(repo.root / name, committed)
    ok(repo.rn("add", name))
    assert repo.git("status", "--porcelain") == ""
    return sha(b"never committed")


def test_gc_dry_run_deletes_nothing(tracked):
    lost = _orphan(tracked)
    before = cache_oids(tracked.root)
    result = ok(tracked.rn("gc", "--dry-run"))
    assert "would delete 1 objects" in result.out
    assert cache_oids(tracked.root) == before
    plan = js(tracked.rn("gc", "--dry-run", "--json"))
    assert plan["dry_run"] is True and plan["objects"] == [lost] and plan["deleted"] == 1
    assert cache_oids(tracked.root) == before


def test_gc_removes_unreachable_objects_only(tracked):
    root = tracked.root
    lost = _orphan(tracked)
    before = cache_oids(root)
    result = ok(tracked.rn("gc", "--yes"))
    assert "deleted 1 objects" in result.out
    assert cache_oids(root) == before - {lost}
    assert tracked.rn("status", "--exit-code").code == 0
    assert ok(tracked.rn("verify"))
    import shutil
    shutil.rmtree(root / "data")
    ok(tracked.rn("checkout"))  # everything the workspace needs is still there
    assert (root / "data" / "sub" / "c.bin").read_bytes() == b"\x00\x01" * 2048


def test_gc_keeps_other_branches_by_default_and_workspace_scope_drops_them(tracked):
    root = tracked.root
    tracked.git("checkout", "-q", "-b", "experiment")
    replace(root / "model.pth", b"experimental weights")
    ok(tracked.rn("add", "model.pth"))
    tracked.commit("experiment")
    tracked.git("checkout", "-q", "main")
    ok(tracked.rn("checkout"))
    assert (root / "model.pth").read_bytes() == b"weights-v1"
    exp = sha(b"experimental weights")
    ok(tracked.rn("gc", "--yes"))
    assert exp in cache_oids(root)
    result = ok(tracked.rn("gc", "--workspace", "--yes"))
    assert "deleted 1 objects" in result.out
    assert exp not in cache_oids(root)


def test_gc_keeps_tags_by_default(tracked):
    root = tracked.root
    tracked.git("tag", "release-1")
    replace(root / "model.pth", b"weights-v2")
    ok(tracked.rn("add", "model.pth"))
    tracked.commit("v2")
    ok(tracked.rn("gc", "--yes"))
    assert sha(b"weights-v1") in cache_oids(root)
    ok(tracked.rn("gc", "--workspace", "--all-tags", "--yes"))
    assert sha(b"weights-v1") in cache_oids(root)
    ok(tracked.rn("gc", "--workspace", "--yes"))
    assert sha(b"weights-v1") not in cache_oids(root)


def test_gc_all_commits_keeps_old_history(tracked):
    root = tracked.root
    replace(root / "model.pth", b"weights-v2")
    ok(tracked.rn("add", "model.pth"))
    tracked.commit("v2")
    old = sha(b"weights-v1")
    assert "would delete 0 objects" in ok(tracked.rn("gc", "--all-commits", "--dry-run")).out
    ok(tracked.rn("gc", "--all-commits", "--yes"))
    assert old in cache_oids(root)
    ok(tracked.rn("gc", "--yes"))
    assert old not in cache_oids(root)
    # the old commit can no longer be restored, and Runicorn says why
    tracked.git("checkout", "-q", "HEAD~1")
    result = tracked.rn("checkout")
    assert result.code == 1 and "missing" in result.err


def test_gc_keeps_pointers_staged_in_git_index(tracked):
    root = tracked.root
    replace(root / "model.pth", b"staged version")
    ok(tracked.rn("add", "model.pth"))
    tracked.git("add", "model.pth.rn")  # staged, not committed
    replace(root / "model.pth", b"workspace version")
    ok(tracked.rn("add", "model.pth"))
    ok(tracked.rn("gc", "--workspace", "--yes"))
    assert sha(b"staged version") in cache_oids(root)


def test_gc_grace_period_keeps_young_objects(tracked, monkeypatch):
    root = tracked.root
    lost = _orphan(tracked)
    monkeypatch.setenv("RUNICORN_GC_GRACE_PERIOD", "1h")
    result = ok(tracked.rn("gc", "--yes"))
    assert "deleted 0 objects" in result.out and "1 younger than gc.grace_period" in result.out
    assert lost in cache_oids(root)
    ok(tracked.rn("config", "set", "gc.grace_period", "2d", "--scope", "local"))
    monkeypatch.delenv("RUNICORN_GC_GRACE_PERIOD")
    assert js(tracked.rn("gc", "--dry-run", "--json"))["kept_young"] == 1
    monkeypatch.setenv("RUNICORN_GC_GRACE_PERIOD", "0")
    ok(tracked.rn("gc", "--yes"))
    assert lost not in cache_oids(root)


def test_gc_without_yes_non_interactive_refuses(tracked):
    lost = _orphan(tracked)
    result = tracked.rn_proc("gc", stdin=subprocess.DEVNULL)
    assert result.returncode not in (0,)
    assert "--yes" in result.stderr
    assert lost in cache_oids(tracked.root)
    inproc = tracked.rn("gc")
    assert inproc.code != 0 and "--yes" in inproc.err
    assert lost in cache_oids(tracked.root)


def test_gc_stops_on_unreadable_pointer(tracked):
    lost = _orphan(tracked)
    (tracked.root / "broken.rn").write_text("runicorn: 1\npath: broken\nkind: file\nhash: sha256\noid: xyz\nsize: 1\n")
    result = tracked.rn("gc", "--yes")
    assert result.code != 0 and "broken.rn" in result.err and "gc stopped before deleting anything" in result.err
    assert lost in cache_oids(tracked.root)


# -- verify ----------------------------------------------------------------------------------


def _corrupt(path: Path) -> None:
    os.chmod(path, 0o644)  # chmod u+w, as a careless user (or a bad disk) would
    with open(path, "r+b") as f:
        f.write(b"XX")


def test_verify_clean(tracked):
    result = ok(tracked.rn("verify"))
    assert "0 corrupt, 0 missing" in result.out
    report = js(tracked.rn("verify", "--json"))
    assert report["ok"] is True and report["corrupt"] == [] and report["missing"] == []
    # data/ has 3 files + 2 manifests, model.pth 1 object
    assert report["checked"] == 6


def test_verify_finds_corrupt_object_exits_5_and_moves_it_away(tracked):
    root = tracked.root
    oid = sha("x,y\n3,4\n")
    _corrupt(obj(root, oid))
    result = tracked.rn("verify")
    assert result.code == 5
    assert f"corrupt: {oid}" in result.out
    assert "1 corrupt" in result.err
    assert not obj(root, oid).exists()
    quarantined = list((root / ".runicorn" / "cache" / "quarantine").iterdir())
    assert len(quarantined) == 1 and quarantined[0].name.startswith(oid)
    # the damage is now reported as missing, so a second verify still fails
    again = tracked.rn("verify", "--json")
    assert again.code == 5 and json.loads(again.out)["missing"] == [oid]


def test_verify_cache_checks_objects_no_pointer_uses(tracked):
    root = tracked.root
    lost = _orphan(tracked)
    _corrupt(obj(root, lost))
    assert tracked.rn("verify").code == 0  # not reachable from the pointers
    result = tracked.rn("verify", "--cache")
    assert result.code == 5 and lost in result.out
    assert not obj(root, lost).exists()


def test_verify_reports_missing_object(tracked):
    oid = sha(b"weights-v1")
    obj(tracked.root, oid).unlink()
    result = tracked.rn("verify", "model.pth")
    assert result.code == 5 and f"missing: {oid}" in result.out


def test_verify_sample_checks_about_half(tmp_repo):
    tmp_repo.gen({"data": {f"f{i:02d}.txt": f"content {i}" for i in range(20)}})
    ok(tmp_repo.rn("add", "data"))
    full = js(tmp_repo.rn("verify", "--cache", "--json"))["checked"]
    assert full == 21
    half = js(tmp_repo.rn("verify", "--cache", "--sample", "50", "--json"))
    assert half["ok"] is True and 0 < half["checked"] < full and abs(half["checked"] - full / 2) <= 1
    bad = tmp_repo.rn("verify", "--sample", "0")
    assert bad.code != 0 and "--sample" in bad.err


# -- config ----------------------------------------------------------------------------------


def test_config_set_get_list_unset(tmp_repo):
    root = tmp_repo.root
    result = ok(tmp_repo.rn("config", "set", "core.jobs", "3"))
    assert "core.jobs = 3 (project)" in result.out
    assert yaml.safe_load((root / ".runicorn.yaml").read_text()) == {"core": {"jobs": 3}}
    assert ok(tmp_repo.rn("config", "get", "core.jobs")).out.strip() == "3"
    ok(tmp_repo.rn("config", "set", "cache.link", "hardlink,copy", "--scope", "local"))
    assert ok(tmp_repo.rn("config", "get", "cache.link")).out.strip() == "hardlink,copy"
    rows = {r["key"]: r for r in js(tmp_repo.rn("config", "list", "--json"))}
    assert rows["core.jobs"] == {"key": "core.jobs", "value": 3, "origin": "project"}
    assert rows["cache.link"]["origin"] == "local" and rows["cache.link"]["value"] == ["hardlink", "copy"]
    assert rows["gc.grace_period"]["origin"] == "env"
    assert rows["viewer.port"]["origin"] == "default"
    text = ok(tmp_repo.rn("config", "list")).out
    assert "core.jobs = 3  (project)" in text
    assert "core.jobs removed (project)" in ok(tmp_repo.rn("config", "unset", "core.jobs")).out
    assert ok(tmp_repo.rn("config", "get", "core.jobs")).out.strip() == "0"
    assert "was not set" in ok(tmp_repo.rn("config", "unset", "core.jobs")).out


def test_config_layering_env_wins(tmp_repo, monkeypatch):
    ok(tmp_repo.rn("config", "set", "core.lock_timeout", "5"))
    ok(tmp_repo.rn("config", "set", "core.lock_timeout", "7", "--scope", "local"))
    assert ok(tmp_repo.rn("config", "get", "core.lock_timeout")).out.strip() == "7.0"
    monkeypatch.setenv("RUNICORN_CORE_LOCK_TIMEOUT", "9")
    assert ok(tmp_repo.rn("config", "get", "core.lock_timeout")).out.strip() == "9.0"


def test_config_unknown_key_is_an_error_naming_it(tmp_repo):
    before = (tmp_repo.root / ".runicorn.yaml").read_bytes()
    for args in (["set", "core.bogus_key", "1"], ["get", "core.bogus_key"]):
        result = tmp_repo.rn("config", *args)
        assert result.code != 0 and "core.bogus_key" in result.err, args
    assert (tmp_repo.root / ".runicorn.yaml").read_bytes() == before
    bad = tmp_repo.rn("config", "set", "core.jobs", "many")
    assert bad.code != 0 and "core.jobs" in bad.err


def test_config_unknown_key_in_file_is_an_error_for_every_command(tmp_repo):
    (tmp_repo.root / ".runicorn.yaml").write_text("core:\n  tpyo: 1\n")
    result = tmp_repo.rn("status")
    assert result.code != 0 and "core.tpyo" in result.err


def test_config_credential_refused_in_project_scope(tmp_repo):
    root = tmp_repo.root
    before = (root / ".runicorn.yaml").read_bytes()
    result = tmp_repo.rn("config", "set", "remote.store.secret_access_key", "s3cr3t")
    assert result.code != 0 and "credential" in result.err
    assert (root / ".runicorn.yaml").read_bytes() == before and "s3cr3t" not in before.decode()
    ok(tmp_repo.rn("config", "set", "remote.store.secret_access_key", "s3cr3t", "--scope", "local"))
    assert "s3cr3t" in (root / ".runicorn" / "config.local.yaml").read_text()
    assert tmp_repo.git("check-ignore", ".runicorn/config.local.yaml").strip() == ".runicorn/config.local.yaml"


def test_config_credential_error_suggests_a_flag_that_exists(tmp_repo):
    """The advice in the error must be runnable: the CLI has `--scope local`, not `--local`."""
    result = tmp_repo.rn("config", "set", "remote.store.password", "pw")
    assert result.code != 0
    assert "--scope local" in result.err, result.err


def test_config_bad_scope_is_usage_error(tmp_repo):
    result = tmp_repo.rn("config", "set", "core.jobs", "2", "--scope", "galaxy")
    assert result.code == 2 and "--scope" in result.err


# -- doctor ----------------------------------------------------------------------------------


def test_doctor_json_reports_versions_links_index_git(tracked):
    report = js(tracked.rn("doctor", "--json"))
    import runicorn
    assert report["versions"]["runicorn"] == runicorn.__version__
    for name in ("typer", "rich", "pyyaml", "filelock", "pygit2", "dulwich"):
        assert report["versions"][name] not in ("", "not installed"), name
    repo = report["repository"]
    assert Path(repo["root"]) == tracked.root.resolve()
    links = repo["cache"]["link_types"]
    assert set(links) >= {"reflink", "hardlink", "copy"}
    assert links["hardlink"] is True and links["copy"] is True  # ext4 here; tmp_path is on one filesystem
    assert repo["cache"]["link_used"] == "hardlink"
    assert Path(repo["index"]["path"]) == tracked.root.resolve() / ".runicorn" / "index.db"
    assert repo["index"]["journal_mode"] == "wal"
    assert repo["git"]["branch"] == "main"
    assert repo["git"]["head"] == tracked.git("rev-parse", "HEAD").strip()
    assert repo["git"]["dirty"] is False
    # doctor only reads: no probe files are left behind
    assert tracked.git("status", "--porcelain") == ""
    assert not [p for p in (tracked.root / ".runicorn" / "cache" / "objects").iterdir() if p.is_file()]


def test_doctor_text_and_outside_repo(tracked, tmp_path):
    text = ok(tracked.rn("doctor")).out
    assert "hardlink yes" in text and "branch main" in text and "index.db" in text
    outside = tmp_path / "nowhere"
    outside.mkdir()
    result = tracked.rn("doctor", "--json", cwd=outside)
    assert result.code == 0
    report = json.loads(result.out)
    assert report["repository"] is None and "git" in report["problem"]


# -- demo ------------------------------------------------------------------------------------


def test_demo_runs_in_a_temp_folder(tmp_path, tmp_repo):
    target = tmp_path / "demo"
    result = tmp_repo.rn("demo", str(target), cwd=tmp_path)
    assert result.code == 0, result.err
    assert "restored" in result.out and "every byte identical" in result.out
    assert "Demo finished" in result.out
    assert (target / "data.rn").is_file() and (target / "models" / "model.pth.rn").is_file()
    assert subprocess.run(["git", "status", "--porcelain"], cwd=target, capture_output=True,
                          text=True).stdout == ""
    from conftest import TmpRepo
    demo_repo = TmpRepo(target)
    assert demo_repo.rn("status", "--exit-code").code == 0
    assert len(js(demo_repo.rn("log", "data", "--json"))) == 2
    runs = js(demo_repo.rn("runs", "list", "--json"))
    assert runs["total"] == 2 and {r["status"] for r in runs["runs"]} == {"finished"}
    info = js(demo_repo.rn("artifacts", "info", "demo-model:production", "--json"))
    assert info["version"] == 1 and "best" in info["aliases"]
    assert "runicorn viewer" in result.out
    again = tmp_repo.rn("demo", str(target), cwd=tmp_path)
    assert again.code == 1 and "not empty" in again.err


# -- generic CLI contract ----------------------------------------------------------------------


def test_paths_are_relative_to_the_current_directory(tmp_repo, tmp_path):
    root = tmp_repo.root
    tmp_repo.gen({"sub": {"inner": {"f.bin": b"inner v1"}}})
    sub = root / "sub"
    result = ok(tmp_repo.rn("add", "inner/f.bin", cwd=sub))
    assert (sub / "inner" / "f.bin.rn").is_file() and "sub/inner/f.bin" in result.out
    tmp_repo.commit("inner")
    assert js(tmp_repo.rn("status", "inner/f.bin", "--json", cwd=sub))[0]["path"] == "sub/inner/f.bin"
    assert js(tmp_repo.rn("log", "inner/f.bin", "--json", cwd=sub))[0]["oid"] == sha(b"inner v1")
    (sub / "inner" / "f.bin").unlink()
    ok(tmp_repo.rn("checkout", "inner/f.bin", cwd=sub / "inner" / ".."))
    assert (sub / "inner" / "f.bin").read_bytes() == b"inner v1"
    ok(tmp_repo.rn("get", "inner/f.bin", "--rev", "HEAD", "-o", str(tmp_path / "copy.bin"), cwd=sub))
    assert (tmp_path / "copy.bin").read_bytes() == b"inner v1"


def test_usage_error_exits_2(tracked):
    assert tracked.rn("status", "--no-such-flag").code == 2
    assert tracked.rn("add").code == 2


def test_quiet_silences_info(tmp_repo):
    tmp_repo.gen({"q.bin": b"q"})
    result = ok(tmp_repo.rn("add", "-q", "q.bin"))
    assert result.out == ""
