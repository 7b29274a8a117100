"""`core.autostage`: commands that write pointers stage them in git (checked by real `git`)."""
from __future__ import annotations

from conftest import ok, replace


def staged(repo) -> set[str]:
    return set(repo.git("diff", "--cached", "--name-only").split())


def test_autostage_is_off_by_default(tmp_repo):
    tmp_repo.gen({"data": {"a.csv": "a"}})
    ok(tmp_repo.rn("add", "data"))
    assert staged(tmp_repo) == set()
    assert "?? data.rn" in tmp_repo.git("status", "--porcelain")


def test_add_stages_the_pointer_and_gitignore(tmp_repo):
    ok(tmp_repo.rn("config", "set", "core.autostage", "true"))
    tmp_repo.commit("autostage on")
    tmp_repo.gen({"data": {"a.csv": "a"}, "models": {"m.pth": b"m"}})
    ok(tmp_repo.rn("add", "data", "models/m.pth"))
    assert staged(tmp_repo) == {"data.rn", ".gitignore", "models/m.pth.rn", "models/.gitignore"}
    porcelain = tmp_repo.git("status", "--porcelain").splitlines()
    assert "A  data.rn" in porcelain and "A  models/m.pth.rn" in porcelain
    assert not any(line.startswith("??") for line in porcelain)  # the data itself stays ignored
    tmp_repo.git("commit", "-q", "-m", "track")
    # re-adding a changed path stages the new pointer; an unchanged one stages nothing
    replace(tmp_repo.root / "data" / "a.csv", "a2")
    ok(tmp_repo.rn("add", "data", "models/m.pth"))
    assert staged(tmp_repo) == {"data.rn"}
    assert tmp_repo.git("diff", "--cached", "data.rn").count("\n+oid: ") == 1


def test_commit_stages_too(tmp_repo):
    tmp_repo.gen({"m.bin": "v1"})
    ok(tmp_repo.rn("add", "m.bin"))
    tmp_repo.commit("m")
    ok(tmp_repo.rn("config", "set", "core.autostage", "true", "--scope", "local"))
    ok(tmp_repo.rn("unprotect", "m.bin"))
    (tmp_repo.root / "m.bin").write_text("v2")
    ok(tmp_repo.rn("commit", "m.bin"))
    assert staged(tmp_repo) == {"m.bin.rn"}


def test_environment_variable_turns_it_on(tmp_repo, monkeypatch):
    monkeypatch.setenv("RUNICORN_CORE_AUTOSTAGE", "1")
    tmp_repo.gen({"m.bin": "v1"})
    ok(tmp_repo.rn("add", "m.bin"))
    assert "m.bin.rn" in staged(tmp_repo)


def test_install_hooks_stages_gitattributes(tmp_repo):
    ok(tmp_repo.rn("config", "set", "core.autostage", "true", "--scope", "local"))
    ok(tmp_repo.rn("install-hooks"))
    assert staged(tmp_repo) == {".gitattributes"}


def test_uninstall_hooks_stages_the_deleted_gitattributes(tmp_repo):
    ok(tmp_repo.rn("config", "set", "core.autostage", "true", "--scope", "local"))
    ok(tmp_repo.rn("install-hooks"))
    tmp_repo.git("commit", "-q", "-m", "hooks")
    ok(tmp_repo.rn("uninstall-hooks"))
    assert not (tmp_repo.root / ".gitattributes").exists()
    assert tmp_repo.git("status", "--porcelain").splitlines() == ["D  .gitattributes"]


def test_a_locked_git_index_is_one_clear_error_and_the_pointer_is_kept(tmp_repo):
    ok(tmp_repo.rn("config", "set", "core.autostage", "true", "--scope", "local"))
    tmp_repo.gen({"m.bin": "v1"})
    (tmp_repo.root / ".git" / "index.lock").write_text("")  # a git command is running
    result = tmp_repo.rn("add", "m.bin")
    assert result.code == 1
    assert "could not be staged in git" in result.err and "run `git add m.bin.rn .gitignore` yourself" in result.err
    assert (tmp_repo.root / "m.bin.rn").is_file()  # the add itself completed
    (tmp_repo.root / ".git" / "index.lock").unlink()
    assert ok(tmp_repo.rn("status", "--json")).out.count('"clean"') == 1
