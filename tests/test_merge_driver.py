"""The git merge driver for `.rn` pointers, run by real `git merge` on real branches."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import TmpRepo, git, ok, replace
from runicorn.core.repo import Repo
from runicorn.storage.manifest import TreeReader


def run_git(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def oid(repo: TmpRepo, rel: str) -> str:
    return yaml.safe_load((repo.root / f"{rel}.rn").read_text())["oid"]


def content(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def branched(tmp_repo):
    """main and `feat` both start from a tracked folder `data`; hooks and driver installed."""
    r = tmp_repo
    r.gen({"data": {"a.csv": "a\n", "b.csv": "b\n", "sub": {"c.csv": "c\n", "d.csv": "d\n"}}, "model.pth": "m1"})
    ok(r.rn("add", "data", "model.pth"))
    ok(r.rn("install-hooks"))
    r.commit("base")
    r.git("branch", "feat")
    return r


def change(r: TmpRepo, files: dict[str, str | None], rel: str = "data", message: str = "change") -> None:
    for path, text in files.items():
        if text is None:
            (r.root / path).chmod(0o644)
            (r.root / path).unlink()
        else:
            replace(r.root / path, text)
    ok(r.rn("add", rel))
    r.commit(message)


def expected_oid(tmp_path, files: dict[str, str]) -> str:
    """The oid `runicorn add` gives a folder with exactly FILES: what a merge must reproduce."""
    root = tmp_path / "expected"
    root.mkdir()
    git(root, "init", "-q")
    check = TmpRepo(root)
    ok(check.rn("init"))
    for path, text in files.items():
        replace(root / "data" / path, text)
    ok(check.rn("add", "data"))
    return oid(check, "data")


def test_different_files_of_one_folder_merge_cleanly(branched, tmp_path):
    r = branched
    change(r, {"data/a.csv": "a ours\n", "data/sub/new.csv": "new\n"})
    r.git("checkout", "-q", "feat")
    change(r, {"data/b.csv": "b theirs\n", "data/sub/d.csv": None})
    r.git("checkout", "-q", "main")
    merged = run_git(r.root, "merge", "feat", "-m", "merge feat")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "runicorn: merged data.rn" in merged.stderr
    want = {"a.csv": "a ours\n", "b.csv": "b theirs\n", "sub/c.csv": "c\n", "sub/new.csv": "new\n"}
    assert oid(r, "data") == expected_oid(tmp_path, want)  # byte-for-byte the manifest `add` would write
    assert content(r.root / "data") == want  # the post-merge hook checked it out
    status = yaml.safe_load(ok(r.rn("status", "--json")).out)
    assert all(s["state"] == "clean" for s in status)
    p = yaml.safe_load((r.root / "data.rn").read_text())
    assert (p["files"], p["size"]) == (4, sum(len(t) for t in want.values()))


def test_changes_on_one_side_only_take_that_side(branched):
    r = branched
    r.git("checkout", "-q", "feat")
    change(r, {"data/sub/c.csv": "c theirs\n"})
    theirs = oid(r, "data")
    r.git("checkout", "-q", "main")
    change(r, {"model.pth": "m2"}, rel="model.pth")
    assert run_git(r.root, "merge", "feat", "-m", "m").returncode == 0
    assert oid(r, "data") == theirs
    assert (r.root / "data" / "sub" / "c.csv").read_text() == "c theirs\n"


def test_same_file_changed_both_ways_is_a_conflict_with_both_versions_kept(branched, tmp_path):
    r = branched
    change(r, {"data/a.csv": "a ours\n", "data/sub/c.csv": "c ours\n"})
    r.git("checkout", "-q", "feat")
    change(r, {"data/a.csv": "a theirs\n", "data/b.csv": "b theirs\n"})
    r.git("checkout", "-q", "main")
    merged = run_git(r.root, "merge", "feat", "-m", "m")
    assert merged.returncode != 0
    assert "conflict: data/a.csv: ours file" in merged.stderr and "theirs file" in merged.stderr
    assert "1 file(s) changed on both sides (a.csv)" in merged.stderr
    assert "data.rn" in run_git(r.root, "diff", "--name-only", "--diff-filter=U").stdout
    text = (r.root / "data.rn").read_text()
    assert text.startswith("<<<<<<< ours\n") and "\n=======\n" in text and text.endswith(">>>>>>> theirs\n")
    ours_doc, theirs_doc = (yaml.safe_load(part) for part in
                            text.removeprefix("<<<<<<< ours\n").removesuffix(">>>>>>> theirs\n").split("=======\n"))
    repo = Repo(r.root)
    trees = TreeReader(repo.odb)
    for doc, a_text in ((ours_doc, "a ours\n"), (theirs_doc, "a theirs\n")):
        files = dict(trees.walk(doc["oid"]))  # both merged manifests are in the cache
        assert set(files) == {"a.csv", "b.csv", "sub/c.csv", "sub/d.csv"}
        assert repo.odb.path(files["a.csv"].oid) and (open(repo.odb.path(files["a.csv"].oid)).read() == a_text)
        assert open(repo.odb.path(files["b.csv"].oid)).read() == "b theirs\n"  # non-conflicting: from both
        assert open(repo.odb.path(files["sub/c.csv"].oid)).read() == "c ours\n"
    status = r.rn("status")
    assert status.code == 1 and "then `git add data.rn` and run `runicorn checkout`" in status.err
    # resolve: keep theirs' a.csv, then check out
    lines = text.splitlines(keepends=True)
    keep = "".join(lines[lines.index("=======\n") + 1:-1])
    (r.root / "data.rn").write_text(keep)
    r.git("add", "data.rn")
    r.git("commit", "-q", "--no-edit")
    ok(r.rn("checkout"))
    assert content(r.root / "data") == {"a.csv": "a theirs\n", "b.csv": "b theirs\n", "sub/c.csv": "c ours\n",
                                        "sub/d.csv": "d\n"}


def test_deleted_on_one_side_modified_on_the_other_is_a_conflict(branched):
    r = branched
    change(r, {"data/b.csv": None})
    r.git("checkout", "-q", "feat")
    change(r, {"data/b.csv": "b theirs\n"})
    r.git("checkout", "-q", "main")
    merged = run_git(r.root, "merge", "feat", "-m", "m")
    assert merged.returncode != 0 and "conflict: data/b.csv: ours deleted, theirs file" in merged.stderr


def test_a_tracked_file_changed_both_ways_is_a_conflict(branched):
    r = branched
    change(r, {"model.pth": "ours"}, rel="model.pth")
    r.git("checkout", "-q", "feat")
    change(r, {"model.pth": "theirs"}, rel="model.pth")
    r.git("checkout", "-q", "main")
    merged = run_git(r.root, "merge", "feat", "-m", "m")
    assert merged.returncode != 0 and "conflict: model.pth: ours file" in merged.stderr
    assert "<<<<<<< ours" in (r.root / "model.pth.rn").read_text()


def test_missing_manifests_are_fetched_from_the_remote(tmp_path):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    a, b = TmpRepo(tmp_path / "a"), TmpRepo(tmp_path / "b")
    git(tmp_path, "clone", "-q", str(origin), str(a.root))
    ok(a.rn("init"))
    ok(a.rn("remote", "add", "storage", str(tmp_path / "store"), "--default"))
    a.gen({"data": {"x.csv": "x\n", "y.csv": "y\n"}})
    ok(a.rn("add", "data"))
    a.commit("base")
    ok(a.rn("push"))
    a.git("push", "-q", "origin", "main")
    git(tmp_path, "clone", "-q", str(origin), str(b.root))
    ok(b.rn("install-hooks"))  # B: no data pulled, the cache is empty
    a.git("checkout", "-q", "-b", "feat")
    change(a, {"data/y.csv": "y theirs\n"})
    ok(a.rn("push"))
    a.git("push", "-q", "origin", "feat")
    ok(b.rn("pull"))
    change(b, {"data/x.csv": "x ours\n"})
    ok(b.rn("push"))
    repo = Repo(b.root)
    base = yaml.safe_load(b.git("show", "HEAD~1:data.rn"))["oid"]
    Path(repo.odb.path(base)).unlink()  # not even the base manifest is here now
    b.git("fetch", "-q", "origin")  # git only: theirs' manifest and files are not in B's cache
    theirs = yaml.safe_load(b.git("show", "origin/feat:data.rn"))["oid"]
    assert not repo.odb.exists(theirs)
    merged = run_git(b.root, "merge", "origin/feat", "-m", "m")
    assert merged.returncode == 0, merged.stderr
    assert repo.odb.exists(base) and repo.odb.exists(theirs)
    assert content(b.root / "data") == {"x.csv": "x ours\n", "y.csv": "y theirs\n"}  # hook fetched the files


def test_missing_manifest_without_a_remote_fails_clearly_and_git_marks_a_conflict(branched):
    r = branched
    change(r, {"data/a.csv": "a ours\n"})
    r.git("checkout", "-q", "feat")
    change(r, {"data/b.csv": "b theirs\n"})
    r.git("checkout", "-q", "main")
    import shutil

    shutil.rmtree(r.root / ".runicorn" / "cache")
    merged = run_git(r.root, "merge", "feat", "-m", "m")
    assert merged.returncode != 0
    assert "cannot merge data.rn: the base manifest" in merged.stderr and "no remote is configured" in merged.stderr
    assert "data.rn" in run_git(r.root, "diff", "--name-only", "--diff-filter=U").stdout


def test_driver_refuses_a_malformed_side(tmp_repo, tmp_path):
    good = tmp_path / "good.rn"
    tmp_repo.gen({"m.bin": "m"})
    ok(tmp_repo.rn("add", "m.bin"))
    good.write_text((tmp_repo.root / "m.bin.rn").read_text())
    bad = tmp_path / "bad.rn"
    bad.write_text("runicorn: 1\npath: ../../etc\n")
    before = good.read_text()
    result = tmp_repo.rn("merge-driver", str(bad), str(good), str(bad), "m.bin.rn")
    assert result.code == 1 and "cannot merge m.bin.rn: the base version is not a valid pointer" in result.err
    assert good.read_text() == before


def test_same_change_on_both_sides_is_clean_and_a_pointer_added_on_both_merges(tmp_repo, tmp_path):
    r = tmp_repo
    ok(r.rn("install-hooks"))
    r.commit("hooks")
    r.git("branch", "feat")
    r.gen({"data": {"shared.csv": "same\n", "ours.csv": "o\n"}})
    ok(r.rn("add", "data"))
    r.commit("ours adds data")
    r.git("checkout", "-q", "feat")
    (r.root / "data").chmod(0o755)
    import shutil

    shutil.rmtree(r.root / "data")
    r.gen({"data": {"shared.csv": "same\n", "theirs.csv": "t\n"}})
    ok(r.rn("add", "data"))
    r.commit("theirs adds data")
    r.git("checkout", "-q", "main")
    merged = run_git(r.root, "merge", "feat", "-m", "m")  # no base version: git passes an empty %O
    assert merged.returncode == 0, merged.stderr
    want = {"shared.csv": "same\n", "ours.csv": "o\n", "theirs.csv": "t\n"}
    assert oid(r, "data") == expected_oid(tmp_path, want)
    assert content(r.root / "data") == want


@pytest.mark.parametrize("driver", [True, False], ids=["merge-driver", "git-line-merge"])
def test_status_and_checkout_on_a_conflicted_pointer_say_how_to_resolve(tmp_repo, driver):
    """After a real conflicting merge, git refuses `git checkout -- model.pth.rn` (unmerged path):
    status and checkout say to keep one side and `git add`, in one line, exit 1."""
    r = tmp_repo
    r.gen({"model.pth": "m1", "data": {"a.csv": "a\n"}})
    ok(r.rn("add", "model.pth", "data"))
    if driver:
        ok(r.rn("install-hooks"))
    r.commit("base")
    r.git("branch", "feat")
    change(r, {"model.pth": "ours"}, rel="model.pth")
    r.git("checkout", "-q", "feat")
    change(r, {"model.pth": "theirs"}, rel="model.pth")
    r.git("checkout", "-q", "main")
    assert run_git(r.root, "merge", "feat", "-m", "m").returncode != 0
    text = (r.root / "model.pth.rn").read_text()
    assert "<<<<<<< " in text and ">>>>>>> " in text
    assert run_git(r.root, "checkout", "--", "model.pth.rn").returncode != 0  # the advice git would refuse
    for command in (["status"], ["checkout"], ["status", "model.pth"]):
        done = r.rn(*command)
        assert done.code == 1, done
        assert done.err.strip().count("\n") == 0 and "git checkout -- " not in done.err
        assert "model.pth.rn is still in merge conflict" in done.err
        assert "then `git add model.pth.rn` and run `runicorn checkout`" in done.err
    # resolve as the message says: keep theirs, git add, checkout
    lines = text.splitlines(keepends=True)
    start, middle, end = (next(i for i, x in enumerate(lines) if x.startswith(m)) for m in ("<<<<<<<", "=======", ">>>>>>>"))
    (r.root / "model.pth.rn").write_text("".join(lines[:start] + lines[middle + 1:end] + lines[end + 1:]))
    r.git("add", "model.pth.rn")
    ok(r.rn("checkout"))
    assert (r.root / "model.pth").read_text() == "theirs"
    assert [s["state"] for s in yaml.safe_load(ok(r.rn("status", "--json")).out)] == ["clean", "clean"]
