"""`runicorn install-hooks` / `uninstall-hooks` and the hooks themselves, driven by real git.

Every hook here is run by git (checkout, merge, pull, push), which runs the installed shell
script, which runs Runicorn as a real process. Remotes are real local folders; the git origin
is a real bare repository.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import TmpRepo, git, ok
from runicorn.core import hooks

ROOT = Path(__file__).resolve().parent.parent


def run_git(cwd: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, input=input)


def files_of(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def objects_in(store: Path) -> set[str]:
    return {p.parent.name + p.name for p in (store / "objects").glob("*/*")} if store.exists() else set()


@pytest.fixture
def team(tmp_path) -> dict:
    """A bare git origin, a local data remote, and clone A with data pushed everywhere and hooks installed."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    store = tmp_path / "store"
    a = TmpRepo(tmp_path / "a")
    git(tmp_path, "clone", "-q", str(origin), str(a.root))
    ok(a.rn("init"))
    ok(a.rn("remote", "add", "storage", str(store), "--default"))
    a.gen({"data": {"a.csv": "a\n", "b.csv": "b\n", "sub": {"c.csv": "c\n"}}, "model.pth": b"weights-1"})
    ok(a.rn("add", "data", "model.pth"))
    ok(a.rn("install-hooks"))
    a.commit("data v1")
    push = run_git(a.root, "push", "-q", "origin", "main")
    assert push.returncode == 0, push.stderr
    return {"origin": origin, "store": store, "a": a, "tmp": tmp_path}


def clone(team: dict, name: str, hooks_on: bool = True) -> TmpRepo:
    b = TmpRepo(team["tmp"] / name)
    git(team["tmp"], "clone", "-q", str(team["origin"]), str(b.root))
    if hooks_on:
        ok(b.rn("install-hooks"))
    return b


# -- install / uninstall ----------------------------------------------------------------------

def test_install_writes_three_executable_hooks_the_driver_and_gitattributes(tmp_repo):
    result = ok(tmp_repo.rn("install-hooks", "--json"))
    report = yaml.safe_load(result.out)
    assert report["installed"] == ["post-checkout", "post-merge", "pre-push"] and report["attributes"] is True
    hooks_dir = tmp_repo.root / ".git" / "hooks"
    for name in hooks.HOOKS:
        path = hooks_dir / name
        assert hooks.MARK in path.read_text()
        assert path.stat().st_mode & stat.S_IXUSR
    assert tmp_repo.git("config", "merge.runicorn.driver").strip().endswith("-m runicorn merge-driver %O %A %B %P")
    assert tmp_repo.git("check-attr", "merge", "data.rn").strip() == "data.rn: merge: runicorn"
    # idempotent: nothing chained, one attributes line
    again = yaml.safe_load(ok(tmp_repo.rn("install-hooks", "--json")).out)
    assert again["chained"] == [] and again["attributes"] is False
    assert (tmp_repo.root / ".gitattributes").read_text().count(hooks.ATTR_LINE) == 1
    assert not list(hooks_dir.glob("*" + hooks.CHAINED))


def test_hooks_are_valid_shell(tmp_repo):
    for name in hooks.HOOKS:
        checked = subprocess.run(["sh", "-n"], input=hooks.script(name, sys.executable), text=True, capture_output=True)
        assert checked.returncode == 0, f"{name}: {checked.stderr}"


def test_existing_hook_is_chained_never_overwritten_and_restored(tmp_repo):
    hooks_dir = tmp_repo.root / ".git" / "hooks"
    mine = "#!/bin/sh\necho \"mine $*\" >> \"$(git rev-parse --git-dir)/mine.log\"\n"
    (hooks_dir / "post-checkout").write_text(mine)
    (hooks_dir / "post-checkout").chmod(0o755)
    out = ok(tmp_repo.rn("install-hooks")).out
    assert "kept your existing post-checkout hook" in out
    assert (hooks_dir / ("post-checkout" + hooks.CHAINED)).read_text() == mine
    tmp_repo.git("checkout", "-q", "-b", "other")
    log = (tmp_repo.root / ".git" / "mine.log").read_text()
    assert log.startswith("mine ") and log.strip().endswith(" 1")  # ran, with git's three arguments
    out = ok(tmp_repo.rn("uninstall-hooks")).out
    assert "restored your post-checkout hook" in out
    assert (hooks_dir / "post-checkout").read_text() == mine
    assert not (hooks_dir / "pre-push").exists() and not (hooks_dir / "post-merge").exists()
    assert tmp_repo.git("config", "--get", "merge.runicorn.driver", check=False) == ""
    assert not (tmp_repo.root / ".gitattributes").exists()  # install-hooks created it: gone, not left empty


def test_uninstall_deletes_a_gitattributes_that_held_only_our_line_and_keeps_other_lines(tmp_repo):
    attributes = tmp_repo.root / ".gitattributes"
    ok(tmp_repo.rn("install-hooks"))
    tmp_repo.commit("hooks")
    report = yaml.safe_load(ok(tmp_repo.rn("uninstall-hooks", "--json")).out)
    assert report["attributes"] is True and report["attributes_removed"] is True
    assert not attributes.exists()
    assert tmp_repo.git("status", "--porcelain").splitlines() == [" D .gitattributes"]
    tmp_repo.git("checkout", "--", ".gitattributes")  # back to the committed `*.rn merge=runicorn`
    ok(tmp_repo.rn("install-hooks"))
    out = ok(tmp_repo.rn("uninstall-hooks")).out
    assert "deleted .gitattributes" in out
    # a file with other lines keeps them, and only them
    attributes.write_text("*.bin binary\n")
    ok(tmp_repo.rn("install-hooks"))
    report = yaml.safe_load(ok(tmp_repo.rn("uninstall-hooks", "--json")).out)
    assert report["attributes"] is True and report["attributes_removed"] is False
    assert attributes.read_text() == "*.bin binary\n"


def test_uninstall_leaves_foreign_hooks_alone(tmp_repo):
    ok(tmp_repo.rn("install-hooks"))
    hook = tmp_repo.root / ".git" / "hooks" / "post-merge"
    hook.write_text("#!/bin/sh\nexit 0\n")
    out = ok(tmp_repo.rn("uninstall-hooks")).out
    assert "left post-merge alone" in out and hook.read_text() == "#!/bin/sh\nexit 0\n"


def test_install_refuses_when_a_foreign_hook_and_a_chained_one_both_exist(tmp_repo):
    hooks_dir = tmp_repo.root / ".git" / "hooks"
    (hooks_dir / "pre-push").write_text("#!/bin/sh\nexit 0\n")
    (hooks_dir / ("pre-push" + hooks.CHAINED)).write_text("#!/bin/sh\nexit 0\n")
    before = files_of(hooks_dir)
    result = tmp_repo.rn("install-hooks")
    assert result.code == 1 and "merge them into one hook by hand" in result.err
    assert files_of(hooks_dir) == before  # nothing changed
    assert tmp_repo.git("config", "--get", "merge.runicorn.driver", check=False) == ""


def test_core_hooks_path_is_respected(tmp_repo):
    tmp_repo.git("config", "core.hooksPath", ".githooks")
    report = yaml.safe_load(ok(tmp_repo.rn("install-hooks", "--json")).out)
    assert Path(report["hooks_dir"]) == tmp_repo.root / ".githooks"
    assert hooks.MARK in (tmp_repo.root / ".githooks" / "post-merge").read_text()
    assert not (tmp_repo.root / ".git" / "hooks" / "post-merge").exists()


def test_hooks_say_so_when_runicorn_cannot_be_found(team, tmp_path):
    a = team["a"]
    from runicorn.core.repo import Repo

    hooks.install(Repo(a.root), python=str(tmp_path / "no-such-python"))
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # no runicorn on PATH
    checkout = subprocess.run(["git", "checkout", "-q", "-b", "x"], cwd=a.root, capture_output=True, text=True, env=env)
    assert checkout.returncode == 0 and "runicorn: command not found, data was not checked out" in checkout.stderr
    push = subprocess.run(["git", "push", "-q", "origin", "x"], cwd=a.root, capture_output=True, text=True, env=env)
    assert push.returncode != 0 and "push refused" in push.stderr


def test_pre_commit_framework_manifest():
    doc = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    by_id = {h["id"]: h for h in doc}
    assert {"runicorn-post-checkout", "runicorn-post-merge", "runicorn-pre-push"} <= set(by_id)
    for name in hooks.HOOKS:
        h = by_id[f"runicorn-{name}"]
        assert h["entry"] == f"runicorn git-hook {name}" and h["stages"] == [name]
        assert h["pass_filenames"] is False and h["always_run"] is True and h["language"] == "python"


# -- post-checkout / post-merge ---------------------------------------------------------------

def test_post_checkout_checks_out_only_the_changed_pointers(team):
    a = team["a"]
    a.git("checkout", "-q", "-b", "v2")
    (a.root / "data" / "a.csv").unlink()
    (a.root / "data" / "a.csv").write_text("a v2\n")
    ok(a.rn("add", "data"))
    a.commit("data v2")
    # an uncommitted change to the other tracked path: a hook touching it would warn or refuse
    (a.root / "model.pth").chmod(0o644)
    (a.root / "model.pth").unlink()
    (a.root / "model.pth").write_bytes(b"local experiment")
    switched = run_git(a.root, "checkout", "main")
    assert switched.returncode == 0, switched.stderr
    assert "runicorn: checked out data" in switched.stderr and "model.pth" not in switched.stderr
    assert (a.root / "data" / "a.csv").read_text() == "a\n"
    assert (a.root / "model.pth").read_bytes() == b"local experiment"
    back = run_git(a.root, "checkout", "v2")
    assert back.returncode == 0 and (a.root / "data" / "a.csv").read_text() == "a v2\n"


def test_post_checkout_keeps_local_changes_of_a_changed_path_and_says_so(team):
    a = team["a"]
    a.git("checkout", "-q", "-b", "v2")
    (a.root / "data" / "b.csv").unlink()
    (a.root / "data" / "b.csv").write_text("b v2\n")
    ok(a.rn("add", "data"))
    a.commit("data v2")
    (a.root / "data" / "b.csv").unlink()
    (a.root / "data" / "b.csv").write_text("unsaved work\n")
    switched = run_git(a.root, "checkout", "main")
    assert switched.returncode == 0  # a post-checkout hook never breaks git
    assert "data has uncommitted changes and was not checked out" in switched.stderr
    assert (a.root / "data" / "b.csv").read_text() == "unsaved work\n"


def test_file_checkout_is_left_alone(team):
    a = team["a"]
    a.git("checkout", "-q", "-b", "v2")
    (a.root / "model.pth").chmod(0o644)
    (a.root / "model.pth").unlink()
    (a.root / "model.pth").write_bytes(b"weights-2")
    ok(a.rn("add", "model.pth"))
    a.commit("model v2")
    done = run_git(a.root, "checkout", "main", "--", "model.pth.rn")
    assert done.returncode == 0 and "runicorn" not in done.stderr
    assert (a.root / "model.pth").read_bytes() == b"weights-2"  # flag 0: `runicorn checkout` is the user's call


def test_git_pull_brings_the_data_through_post_merge(team):
    a, store = team["a"], team["store"]
    ok(a.rn("push"))
    b = clone(team, "b")
    ok(b.rn("pull"))
    a.gen({"data": {"sub": {"d.csv": "d\n"}}})
    ok(a.rn("add", "data"))
    a.commit("add d")
    ok(a.rn("push"))
    assert run_git(a.root, "push", "-q", "origin", "main").returncode == 0
    pulled = run_git(b.root, "pull", "-q", "--no-rebase", "origin", "main")
    assert pulled.returncode == 0, pulled.stderr
    assert "runicorn: checked out data (" in pulled.stderr and "object(s) downloaded)" in pulled.stderr
    assert files_of(b.root / "data") == files_of(a.root / "data")
    assert ok(b.rn("status", "--json")).out.count('"clean"') == 2
    assert objects_in(store)  # sanity: the data came through the remote


def test_data_pushed_by_the_pre_push_hook_reaches_another_clone(team):
    """A never runs `runicorn push`: its git push does it, and B's git pull fetches it."""
    a, b = team["a"], clone(team, "b")
    ok(b.rn("pull"))
    a.gen({"data": {"e.csv": "e\n"}})
    ok(a.rn("add", "data"))
    a.commit("add e")
    assert run_git(a.root, "push", "-q", "origin", "main").returncode == 0
    pulled = run_git(b.root, "pull", "-q", "--no-rebase", "origin", "main")
    assert pulled.returncode == 0, pulled.stderr
    assert (b.root / "data" / "e.csv").read_text() == "e\n"


# -- pre-push ---------------------------------------------------------------------------------

def test_pre_push_uploads_the_data_of_every_pushed_commit(team):
    a, store = team["a"], team["store"]
    assert run_git(a.root, "checkout", "-q", "-b", "feature").returncode == 0
    a.gen({"data": {"x.csv": "only in an intermediate commit\n"}})
    ok(a.rn("add", "data"))
    a.commit("x")
    middle = ok(a.rn("ls", "data/x.csv", "--json")).out
    (a.root / "data" / "x.csv").chmod(0o644)
    (a.root / "data" / "x.csv").unlink()
    ok(a.rn("add", "data"))
    a.commit("drop x")
    x_oid = yaml.safe_load(middle)[0]["oid"]
    pushed = run_git(a.root, "push", "origin", "feature")
    assert pushed.returncode == 0, pushed.stderr
    assert "runicorn: pushed" in pushed.stderr
    there = objects_in(store)
    assert x_oid in there  # named only by the intermediate commit
    for rel in ("data", "model.pth"):
        assert yaml.safe_load((a.root / f"{rel}.rn").read_text())["oid"] in there
    # a push with nothing new uploads nothing and says nothing
    again = run_git(a.root, "push", "origin", "feature")
    assert again.returncode == 0 and "runicorn: pushed" not in again.stderr


def test_pre_push_refuses_a_push_whose_data_is_not_here(team):
    a = team["a"]
    b = clone(team, "b")  # has the pointers but not the data (no pull)
    b.gen({"notes.txt": "code change\n"})
    b.commit("code only")
    b.gen({"extra.bin": b"new data"})
    ok(b.rn("add", "extra.bin"))
    b.commit("extra")
    (b.root / ".runicorn" / "cache").rename(b.root / "lost-cache")  # the cache is gone
    before = a.git("ls-remote", str(team["origin"]), "main")
    pushed = run_git(b.root, "push", "origin", "main")
    assert pushed.returncode != 0
    assert "the commits being pushed name data that is not in this cache" in pushed.stderr
    assert "extra.bin" in pushed.stderr and "git push --no-verify" in pushed.stderr
    assert a.git("ls-remote", str(team["origin"]), "main") == before  # git pushed nothing


def test_pre_push_without_a_runicorn_remote_warns_but_lets_git_push(tmp_path):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    a = TmpRepo(tmp_path / "a")
    git(tmp_path, "clone", "-q", str(origin), str(a.root))
    ok(a.rn("init"))
    a.gen({"m.bin": b"m"})
    ok(a.rn("add", "m.bin"))
    ok(a.rn("install-hooks"))
    a.commit("m")
    pushed = run_git(a.root, "push", "origin", "main")
    assert pushed.returncode == 0 and "no Runicorn remote is configured" in pushed.stderr


def test_pre_push_passes_the_refs_to_a_chained_hook_and_stops_when_it_fails(team):
    a = team["a"]
    hooks_dir = a.root / ".git" / "hooks"
    ok(a.rn("uninstall-hooks"))
    (hooks_dir / "pre-push").write_text('#!/bin/sh\ncat > "$(git rev-parse --git-dir)/refs.log"\nexit 3\n')
    (hooks_dir / "pre-push").chmod(0o755)
    ok(a.rn("install-hooks"))
    a.gen({"n.txt": "n"})
    a.commit("n")
    head = a.git("rev-parse", "HEAD").strip()
    pushed = run_git(a.root, "push", "origin", "main")
    assert pushed.returncode != 0
    assert (a.root / ".git" / "refs.log").read_text().startswith(f"refs/heads/main {head} refs/heads/main ")


def test_a_failing_chained_post_hook_does_not_skip_the_data_checkout(team):
    """git has switched or merged already when post-checkout / post-merge run: a failing hook of the
    user's must not leave the workspace on the old data. Ours runs anyway; the user's status wins."""
    a = team["a"]
    hooks_dir = a.root / ".git" / "hooks"
    ok(a.rn("uninstall-hooks"))
    for name, code in (("post-checkout", 4), ("post-merge", 5)):
        (hooks_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "$(git rev-parse --git-dir)/mine.log"\nexit {code}\n')
        (hooks_dir / name).chmod(0o755)
    ok(a.rn("install-hooks"))
    assert run_git(a.root, "checkout", "-q", "-b", "v2").returncode == 1  # nothing to check out yet
    (a.root / "data" / "a.csv").unlink()
    (a.root / "data" / "a.csv").write_text("a v2\n")
    ok(a.rn("add", "data"))
    a.commit("data v2")
    switched = run_git(a.root, "checkout", "main")
    assert switched.returncode == 1  # a failing post-checkout fails `git checkout`, as without Runicorn
    assert "your post-checkout hook (post-checkout.pre-runicorn) failed with exit code 4" in switched.stderr
    assert "runicorn: checked out data" in switched.stderr and (a.root / "data" / "a.csv").read_text() == "a\n"
    merged = run_git(a.root, "merge", "-q", "v2")
    assert merged.returncode == 0, merged.stderr  # git ignores post-merge's status
    assert "your post-merge hook (post-merge.pre-runicorn) failed with exit code 5" in merged.stderr
    assert "runicorn: checked out data" in merged.stderr and (a.root / "data" / "a.csv").read_text() == "a v2\n"
    log = (a.root / ".git" / "mine.log").read_text().splitlines()
    assert [line.split()[0] for line in log] == ["post-checkout", "post-checkout", "post-merge"]  # ran first, each time


def test_git_hook_rejects_an_unknown_hook_name(tmp_repo):
    result = tmp_repo.rn("git-hook", "pre-rebase")
    assert result.code == 2 and "unknown hook 'pre-rebase'" in result.err


def test_pre_commit_style_variables_drive_post_checkout(team):
    """The pre-commit framework passes refs in PRE_COMMIT_* variables, not arguments."""
    a = team["a"]
    ok(a.rn("uninstall-hooks"))
    old = a.git("rev-parse", "HEAD").strip()
    a.git("checkout", "-q", "-b", "v2")
    (a.root / "data" / "a.csv").unlink()
    (a.root / "data" / "a.csv").write_text("a v2\n")
    ok(a.rn("add", "data"))
    new = a.commit("v2")
    a.git("checkout", "-q", "main")  # no hooks: the workspace keeps v2's data
    assert (a.root / "data" / "a.csv").read_text() == "a v2\n"
    done = a.rn_proc("git-hook", "post-checkout", "--json",
                     env={"PRE_COMMIT_FROM_REF": new, "PRE_COMMIT_TO_REF": old, "PRE_COMMIT_CHECKOUT_TYPE": "1"})
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["checked_out"] == ["data"]
    assert (a.root / "data" / "a.csv").read_text() == "a\n"


def test_pre_commit_framework_pre_push_pushes_a_first_push_and_then_only_the_new_commits(tmp_path):
    """pre-commit reads git's stdin itself and passes PRE_COMMIT_* variables, set here as its
    hook_impl sets them: a push that reaches the root commit (every first push) gets no FROM/TO
    refs, only the remote and the branches; a later push gets FROM (the remote's sha) and TO."""
    origin, store = tmp_path / "origin.git", tmp_path / "store"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    a = TmpRepo(tmp_path / "a")
    git(tmp_path, "clone", "-q", str(origin), str(a.root))
    ok(a.rn("init"))
    ok(a.rn("remote", "add", "storage", str(store), "--default"))
    a.gen({"m.bin": b"on main"})
    ok(a.rn("add", "m.bin"))
    a.commit("m")
    a.git("checkout", "-q", "-b", "feature")
    a.gen({"f.bin": b"only on feature"})
    ok(a.rn("add", "f.bin"))
    a.commit("f")
    a.git("checkout", "-q", "main")  # pushing another branch than HEAD: `git push origin feature`
    first = {"PRE_COMMIT_REMOTE_NAME": "origin", "PRE_COMMIT_REMOTE_URL": str(origin),
             "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/feature", "PRE_COMMIT_REMOTE_BRANCH": "refs/heads/feature"}
    done = a.rn_proc("git-hook", "pre-push", "--json", env=first, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    report = yaml.safe_load(done.stdout)
    assert report["commits"] == 2 and report["pointers"] == 2 and report["transferred"] == 2
    for rel in ("m.bin", "f.bin"):
        assert pointer_oid(a, rel, "feature") in objects_in(store)
    assert run_git(a.root, "push", "-q", "--no-verify", "origin", "feature").returncode == 0
    again = yaml.safe_load(a.rn_proc("git-hook", "pre-push", "--json", env=first, stdin=subprocess.DEVNULL).stdout)
    assert again["commits"] == 0  # everything is on the remote's tracking branch now
    a.git("checkout", "-q", "feature")
    old = a.git("rev-parse", "HEAD").strip()
    a.gen({"g.bin": b"next"})
    ok(a.rn("add", "g.bin"))
    new = a.commit("g")
    later = {**first, "PRE_COMMIT_FROM_REF": old, "PRE_COMMIT_TO_REF": new}
    report = yaml.safe_load(a.rn_proc("git-hook", "pre-push", "--json", env=later, stdin=subprocess.DEVNULL).stdout)
    assert report["commits"] == 1 and report["pointers"] == 1 and report["transferred"] == 1
    assert pointer_oid(a, "g.bin", "feature") in objects_in(store)


def pointer_oid(repo: TmpRepo, rel: str, rev: str) -> str:
    return yaml.safe_load(repo.git("show", f"{rev}:{rel}.rn"))["oid"]


def test_pre_push_accepts_data_the_remote_already_has_and_completes_the_merged_manifest(team):
    """B merges A's pushed branch without fetching its files (no post-merge hook): B's cache lacks
    A's new file, the remote has it. The push goes through, and the merged manifest B made
    reaches the remote (push alone would hold it back)."""
    a, store = team["a"], team["store"]
    b = clone(team, "b")
    ok(b.rn("pull"))
    (b.root / ".git" / "hooks" / "post-merge").unlink()
    a.git("checkout", "-q", "-b", "feat")
    (a.root / "data" / "b.csv").unlink()
    (a.root / "data" / "b.csv").write_text("b from A\n")
    ok(a.rn("add", "data"))
    a.commit("A: b")
    assert run_git(a.root, "push", "-q", "origin", "feat").returncode == 0
    (b.root / "data" / "a.csv").unlink()
    (b.root / "data" / "a.csv").write_text("a from B\n")
    ok(b.rn("add", "data"))
    b.commit("B: a")
    b.git("fetch", "-q", "origin")
    assert run_git(b.root, "merge", "-q", "origin/feat", "-m", "merge").returncode == 0
    merged = yaml.safe_load((b.root / "data.rn").read_text())["oid"]
    assert merged not in objects_in(store)
    pushed = run_git(b.root, "push", "origin", "HEAD:main")
    assert pushed.returncode == 0, pushed.stderr
    assert merged in objects_in(store)
    c = clone(team, "c", hooks_on=False)
    ok(c.rn("pull"))
    assert (c.root / "data" / "a.csv").read_text() == "a from B\n" and (c.root / "data" / "b.csv").read_text() == "b from A\n"


def test_pre_push_checks_only_what_the_pushed_commits_introduce(team):
    """Data named by older commits (already on the git remote) is not this push's business, even
    when this clone lacks it."""
    b = clone(team, "b")  # no pull: data/ and model.pth are not in B's cache
    b.gen({"notes.txt": "n"})
    b.commit("notes")
    import shutil

    shutil.rmtree(team["store"])  # and not on the remote either: still not what this push introduces
    pushed = run_git(b.root, "push", "origin", "main")
    assert pushed.returncode == 0, pushed.stderr


def test_pre_push_refuses_when_the_runicorn_remote_cannot_be_reached(team):
    a = team["a"]
    ok(a.rn("remote", "modify", "storage", "url", "ssh://127.0.0.1:9/nowhere"))
    ok(a.rn("remote", "modify", "storage", "known_hosts", "none"))
    a.gen({"data": {"z.csv": "z\n"}})
    ok(a.rn("add", "data"))
    a.commit("z")
    before = a.git("ls-remote", str(team["origin"]), "main")
    pushed = run_git(a.root, "push", "origin", "main")
    assert pushed.returncode != 0 and "error:" in pushed.stderr
    assert a.git("ls-remote", str(team["origin"]), "main") == before
    assert run_git(a.root, "push", "--no-verify", "origin", "main").returncode == 0


def test_linked_worktrees_share_the_hooks_of_the_main_repository(tmp_repo, tmp_path):
    wt = tmp_path / "wt"
    tmp_repo.git("worktree", "add", "-q", "-b", "wt", str(wt))
    report = yaml.safe_load(ok(tmp_repo.rn("install-hooks", "--json", cwd=wt)).out)
    assert Path(report["hooks_dir"]) == tmp_repo.root / ".git" / "hooks"  # where git runs them from, for both
    assert hooks.MARK in (tmp_repo.root / ".git" / "hooks" / "post-checkout").read_text()
    assert (wt / ".gitattributes").read_text() == hooks.ATTR_LINE + "\n"


def test_git_clone_with_hooks_from_a_template_folder_brings_the_data(team, tmp_path):
    """post-checkout after `git clone` sees every pointer as changed (old = 000…): the data arrives."""
    a = team["a"]
    ok(a.rn("push"))
    template = tmp_path / "template"
    (template / "hooks").mkdir(parents=True)
    (template / "hooks" / "post-checkout").write_text((a.root / ".git" / "hooks" / "post-checkout").read_text())
    (template / "hooks" / "post-checkout").chmod(0o755)
    cloned = subprocess.run(["git", "clone", "-q", f"--template={template}", str(team["origin"]), str(tmp_path / "c")],
                            capture_output=True, text=True)
    assert cloned.returncode == 0, cloned.stderr
    assert "runicorn: checked out data, model.pth" in cloned.stderr
    assert files_of(tmp_path / "c" / "data") == files_of(a.root / "data")
    assert (tmp_path / "c" / "model.pth").read_bytes() == b"weights-1"


def test_a_bad_pointer_does_not_stop_the_other_paths(team):
    a = team["a"]
    a.git("checkout", "-q", "-b", "v2")
    (a.root / "model.pth").chmod(0o644)
    (a.root / "model.pth").unlink()
    (a.root / "model.pth").write_bytes(b"weights-2")
    (a.root / "data" / "a.csv").unlink()
    (a.root / "data" / "a.csv").write_text("a v2\n")
    ok(a.rn("add", "data", "model.pth"))
    a.commit("v2")
    a.git("checkout", "-q", "main")
    assert (a.root / "data" / "a.csv").read_text() == "a\n"
    # on v2 the model pointer is hostile; data must still follow the branch
    a.git("checkout", "-q", "v2")
    (a.root / "model.pth.rn").write_text("runicorn: 1\npath: ../../etc/passwd\nkind: file\n")
    a.commit("break model pointer")
    a.git("checkout", "-q", "main")
    switched = run_git(a.root, "checkout", "v2")
    assert switched.returncode == 0
    assert "model.pth was not checked out: invalid pointer model.pth.rn" in switched.stderr
    assert (a.root / "data" / "a.csv").read_text() == "a v2\n"
