"""Non-interactive behaviour, for every command: what a CI job or a pipe sees.

No prompts (confirmation fails naming --yes), no progress bars and no colours off a terminal or
with CI set (unless forced), --json on every command that prints data, the exit codes of SPEC §3,
remote settings and credentials from environment variables, the cache from RUNICORN_CACHE_DIR.
Terminals are real pseudo-terminals; processes are real `python -m runicorn` processes.
"""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer.main
import yaml

from conftest import TmpRepo, git, ok
from runicorn import cli

ANSI = b"\x1b["
BAR = "━".encode()


def leaf_commands(group=None, prefix=()):
    group = group or typer.main.get_command(cli.app)
    for name, command in sorted(group.commands.items()):
        path = prefix + (name,)
        if hasattr(command, "commands"):
            yield from leaf_commands(command, path)
        else:
            yield path, command


LEAVES = dict(leaf_commands())

# Commands that print no data (only a confirmation line or a walkthrough), so no --json.
NO_DATA = {("init",), ("unprotect",), ("get",), ("demo",), ("config", "set"), ("config", "unset"),
           ("remote", "add"), ("remote", "default"), ("remote", "modify"), ("remote", "remove")}


def options(command) -> set[str]:
    return {o for p in command.params if getattr(p, "param_type_name", None) == "option" for o in p.opts}


def env_without_terminal_hints(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI", "FORCE_COLOR", "TERM")}
    return {**env, "TERM": "xterm-256color", **extra}


def in_pty(args: list[str], cwd: Path, env: dict, timeout: float = 60) -> tuple[int, bytes]:
    """Run ARGS with stdin, stdout and stderr on a real pseudo-terminal; (exit code, everything shown)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env)
    os.close(slave)
    shown, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            shown += data
        elif proc.poll() is not None:
            break
    else:
        proc.kill()
        pytest.fail(f"{args} did not finish on a terminal in {timeout} s (waiting for input?): {shown[-300:]!r}")
    os.close(master)
    return proc.wait(), shown


def rn_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "runicorn", *args]


@pytest.fixture
def tracked(tmp_repo) -> TmpRepo:
    """A repository with a tracked folder and file, committed, and a local remote."""
    r = tmp_repo
    r.gen({"data": {f"f{i}.csv": f"{i}\n" for i in range(5)}, "model.pth": b"weights"})
    ok(r.rn("add", "data", "model.pth"))
    ok(r.rn("remote", "add", "storage", str(r.root.parent / "store"), "--default"))
    r.commit("track")
    return r


# -- --json ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_every_command_that_prints_data_has_json(path):
    if path in NO_DATA:
        return
    assert "--json" in options(LEAVES[path]), f"`runicorn {' '.join(path)}` prints data but has no --json"


JSON_RUNS = [("status",), ("status", "--remote"), ("diff", "HEAD~1"), ("log", "data"), ("ls",), ("doctor",),
             ("verify",), ("gc", "--dry-run"), ("config", "list"), ("config", "get", "core.jobs"), ("remote", "list"),
             ("checkout",), ("commit",), ("add", "data"), ("push",), ("fetch",), ("pull",), ("install-hooks",),
             ("uninstall-hooks",), ("git-hook", "post-merge"), ("runs", "list"), ("artifacts", "list"),
             ("artifacts", "stats"), ("index", "rebuild")]


def test_json_output_is_one_document_on_stdout(tracked):
    for args in JSON_RUNS:
        if args[: 2] not in LEAVES and args[:1] not in LEAVES:
            continue  # a command another part of the project has not built
        result = tracked.rn(*args, "--json")
        assert result.code == 0, f"runicorn {' '.join(args)} --json exited {result.code}: {result.err}"
        try:
            json.loads(result.out)
        except ValueError:
            pytest.fail(f"runicorn {' '.join(args)} --json printed no single JSON document: {result.out[:300]!r}")


# -- exit codes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_unknown_option_is_a_usage_error_for_every_command(tmp_repo, path):
    result = tmp_repo.rn(*path, "--no-such-option")
    assert result.code == 2, f"`runicorn {' '.join(path)} --no-such-option` exited {result.code}"


# every command that needs a repository, with the least arguments it takes
NEEDS_REPO = {("add",): ["x"], ("commit",): [], ("status",): [], ("checkout",): [], ("unprotect",): ["x"],
              ("diff",): [], ("log",): ["x"], ("ls",): [], ("get",): ["x"], ("gc",): ["--dry-run"],
              ("verify",): [], ("push",): [], ("fetch",): [], ("pull",): [], ("install-hooks",): [],
              ("uninstall-hooks",): [], ("git-hook",): ["post-merge"], ("merge-driver",): ["a", "b", "c"],
              ("remote", "add"): ["s", "/tmp/s"], ("remote", "list"): [], ("remote", "remove"): ["s"],
              ("remote", "modify"): ["s", "jobs", "2"], ("remote", "default"): ["s"], ("index", "rebuild"): [],
              ("artifacts", "list"): []}


@pytest.mark.parametrize("path", sorted(NEEDS_REPO), ids=" ".join)
def test_outside_a_repository_every_command_exits_3(tmp_path, path):
    if path not in LEAVES:
        pytest.skip(f"runicorn {' '.join(path)} not built yet")
    plain = tmp_path / "plain"
    plain.mkdir()
    probe = TmpRepo(plain)
    result = probe.rn(*path, *NEEDS_REPO[path])
    assert result.code == 3 and "not inside a git repository" in result.err, (result.code, result.err)
    if path[0] == "remote":
        return  # like `config`, remotes are settings of a git repository: `runicorn init` is not needed
    git(plain, "init", "-q")
    result = probe.rn(*path, *NEEDS_REPO[path])
    assert result.code == 3, (path, result.code, result.err)
    assert "runicorn init" in result.err or "not inside a git repository" in result.err


def test_lock_timeout_exits_4_and_interrupt_exits_130(tracked):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom runicorn.core.repo import Repo\n"
        "with Repo(sys.argv[1]).lock():\n    print('locked', flush=True)\n    time.sleep(60)\n"), str(tracked.root)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        timed_out = tracked.rn_proc("add", "data", env={"RUNICORN_CORE_LOCK_TIMEOUT": "1", "CI": "true"})
        assert timed_out.returncode == 4 and "repository is locked" in timed_out.stderr
        waiting = subprocess.Popen(rn_args("add", "data"), cwd=tracked.root, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "RUNICORN_CORE_LOCK_TIMEOUT": "60"})
        assert "waiting for another Runicorn command" in waiting.stderr.readline()
        waiting.send_signal(signal.SIGINT)
        assert waiting.wait(timeout=30) == 130
        assert "interrupted" in waiting.stderr.read()
    finally:
        holder.kill()
        holder.wait()


def test_integrity_problem_exits_5_in_ci(tracked):
    from runicorn.core.repo import Repo

    oid = yaml.safe_load((tracked.root / "model.pth.rn").read_text())["oid"]
    obj = Path(Repo(tracked.root).odb.path(oid))
    (tracked.root / "model.pth").unlink()  # the workspace link shares the object's inode
    obj.chmod(0o644)
    obj.write_bytes(b"rotten")
    done = tracked.rn_proc("verify", env={"CI": "true"})
    assert done.returncode == 5 and "1 corrupt" in done.stdout + done.stderr


# -- prompts -------------------------------------------------------------------------------------

def test_gc_without_yes_fails_naming_yes_and_deletes_nothing(tracked):
    (tracked.root / "model.pth").chmod(0o644)
    (tracked.root / "model.pth").unlink()
    (tracked.root / "model.pth").write_bytes(b"weights 2")
    ok(tracked.rn("add", "model.pth"))
    tracked.commit("model 2")
    objects = sorted((tracked.root / ".runicorn" / "cache" / "objects").glob("*/*"))
    for env in ({"CI": "true"}, {}):
        done = tracked.rn_proc("gc", "--workspace", env=env, stdin=subprocess.DEVNULL)
        assert done.returncode == 2 and "rerun with --yes" in done.stderr
    code, shown = in_pty(rn_args("gc", "--workspace"), tracked.root, env_without_terminal_hints(CI="true"))
    assert code == 2 and b"rerun with --yes" in shown and b"[y/N]" not in shown
    assert sorted((tracked.root / ".runicorn" / "cache" / "objects").glob("*/*")) == objects
    ok(tracked.rn("gc", "--workspace", "--yes"))


def test_runs_delete_without_yes_fails_naming_yes(tracked):
    if ("runs", "delete") not in LEAVES:
        pytest.skip("runs delete not built yet")
    done = tracked.rn_proc("run", "--json", "--", sys.executable, "-c", "pass")
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    code, shown = in_pty(rn_args("runs", "delete", run_id), tracked.root, env_without_terminal_hints(CI="true"))
    assert code == 2 and b"--yes" in shown
    assert json.loads(tracked.rn_proc("runs", "show", run_id, "--json").stdout)["id"] == run_id


# -- colours and progress ------------------------------------------------------------------------

def test_piped_output_has_no_colour_and_no_bars(tracked):
    tracked.gen({"many": {f"{i}.txt": str(i) for i in range(2000)}})
    env = env_without_terminal_hints()
    done = subprocess.run(rn_args("add", "many"), cwd=tracked.root, env=env, capture_output=True)
    assert done.returncode == 0
    bad = subprocess.run(rn_args("log", "nothing-here"), cwd=tracked.root, env=env, capture_output=True)
    usage = subprocess.run(rn_args("status", "--nope"), cwd=tracked.root, env=env, capture_output=True)
    for proc in (done, bad, usage):
        assert ANSI not in proc.stdout + proc.stderr and BAR not in proc.stderr
    assert bad.returncode == 1 and bad.stderr.startswith(b"error: ")
    forced = subprocess.run(rn_args("log", "nothing-here"), cwd=tracked.root, env={**env, "FORCE_COLOR": "1"},
                            capture_output=True)
    assert ANSI in forced.stderr  # forced colour is honoured


def test_on_a_terminal_ci_turns_off_bars_colours_and_prompts(tracked):
    tracked.gen({"many": {f"{i}.txt": str(i) for i in range(3000)}})
    # control: a person at a terminal gets bars and colour (so the checks below can fail)
    code, shown = in_pty(rn_args("add", "many"), tracked.root, env_without_terminal_hints())
    assert code == 0 and BAR in shown and ANSI in shown
    tracked.gen({"many": {"new.txt": "new"}})
    code, shown = in_pty(rn_args("add", "many"), tracked.root, env_without_terminal_hints(CI="true"))
    assert code == 0 and BAR not in shown and ANSI not in shown
    for args in (("log", "nothing-here"), ("status", "--nope")):
        code, shown = in_pty(rn_args(*args), tracked.root, env_without_terminal_hints(CI="true"))
        assert code in (1, 2) and ANSI not in shown, shown[:200]
    code, shown = in_pty(rn_args("log", "nothing-here"), tracked.root,
                         env_without_terminal_hints(CI="true", FORCE_COLOR="1"))
    assert ANSI in shown


def test_plain_progress_lines_off_a_terminal(capsys):
    from runicorn.console import CliReporter

    reporter = CliReporter()
    assert reporter.bars is False  # pytest's stdin is not a terminal
    reporter.PLAIN_EVERY_S = 0
    advance = reporter.task("hashing data", 10)
    advance(3)
    reporter.end_task()
    assert "hashing data: 3/10 files" in capsys.readouterr().err
    quiet = CliReporter(quiet=True)
    quiet.PLAIN_EVERY_S = 0
    quiet.task("hashing data", 10)(3)
    assert capsys.readouterr().err == ""


# -- environment: remotes, credentials, cache ------------------------------------------------------

def test_remote_and_credentials_from_environment_variables(tmp_repo, tmp_path):
    r = tmp_repo
    r.gen({"m.bin": b"model"})
    ok(r.rn("add", "m.bin"))
    env = {"CI": "true", "RUNICORN_REMOTE_CI_STORE_URL": str(tmp_path / "ci-store"),
           "RUNICORN_REMOTE_CI_STORE_PASSWORD": "s3cr3t-value", "RUNICORN_CORE_REMOTE": "ci_store"}
    pushed = r.rn_proc("push", "--json", env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["remote"] == "ci_store" and json.loads(pushed.stdout)["transferred"] == 1
    assert list((tmp_path / "ci-store" / "objects").glob("*/*"))
    for args in (("remote", "list", "--json"), ("config", "list", "--json"), ("push",), ("status", "--remote")):
        shown = r.rn_proc(*args, env=env)
        assert shown.returncode == 0 and "s3cr3t-value" not in shown.stdout + shown.stderr
    listed = json.loads(r.rn_proc("remote", "list", "--json", env=env).stdout)
    assert listed[0]["name"] == "ci_store" and listed[0]["options"]["password"] == "****"
    assert not (r.root / ".runicorn.yaml").read_text().count("ci_store")  # nothing was written


def test_cache_dir_from_environment_is_shared_by_clones(tmp_path):
    """What a CI cache restore gives: a second clone finds every object in RUNICORN_CACHE_DIR."""
    cache = tmp_path / "ci-cache"
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    a = TmpRepo(tmp_path / "a")
    git(tmp_path, "clone", "-q", str(origin), str(a.root))
    env = {"RUNICORN_CACHE_DIR": str(cache), "CI": "true"}
    assert a.rn_proc("init", env=env).returncode == 0
    a.gen({"data": {"x.csv": "x", "y.csv": "y"}})
    assert a.rn_proc("add", "data", env=env).returncode == 0
    a.commit("data")
    a.git("push", "-q", "origin", "HEAD:main")
    assert len(list((cache / "objects").glob("*/*"))) == 3  # two files and one manifest
    assert not list((a.root / ".runicorn" / "cache").glob("objects/*/*"))
    b = TmpRepo(tmp_path / "b")
    git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(b.root))
    done = b.rn_proc("checkout", env=env)  # no remote, no pull: the cache has it all
    assert done.returncode == 0, done.stderr
    assert (b.root / "data" / "y.csv").read_text() == "y"
    status = json.loads(b.rn_proc("status", "--json", env=env).stdout)
    assert [s["state"] for s in status] == ["clean"]


def test_permanent_artifact_delete_without_yes_fails_naming_yes(tracked):
    if ("artifacts", "delete") not in LEAVES:
        pytest.skip("artifacts delete not built yet")
    logged = subprocess.run([sys.executable, "-c", (
        "import runicorn as rn\nfrom runicorn.core.artifacts import log_artifact\nfrom runicorn.core.repo import Repo\n"
        "a = rn.Artifact('clf', type='model')\na.add_file('model.pth')\nprint(int(log_artifact(Repo.find(), a)))")],
        cwd=tracked.root, capture_output=True, text=True)
    assert logged.returncode == 0 and logged.stdout.strip() == "1", logged.stderr
    manifest = tracked.root / ".runicorn" / "artifacts" / "clf" / "v1.yaml"
    code, shown = in_pty(rn_args("artifacts", "delete", "clf:v1", "--permanent"), tracked.root,
                         env_without_terminal_hints(CI="true"))
    assert code == 2 and b"--yes" in shown and manifest.is_file()


def test_remote_gc_without_yes_fails_naming_yes(tracked):
    ok(tracked.rn("push"))
    (tracked.root / "model.pth").unlink()
    (tracked.root / "model.pth").write_bytes(b"weights 2")
    ok(tracked.rn("add", "model.pth"))
    tracked.commit("model 2")
    ok(tracked.rn("push"))  # the first model's object is now used only by an older commit
    store = tracked.root.parent / "store"
    before = sorted((store / "objects").glob("*/*"))
    done = tracked.rn_proc("gc", "--remote", "storage", "--workspace", env={"CI": "true"}, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "rerun with --yes" in done.stderr
    assert sorted((store / "objects").glob("*/*")) == before
    ok(tracked.rn("gc", "--remote", "storage", "--workspace", "--yes"))
    assert len(sorted((store / "objects").glob("*/*"))) == len(before) - 1
