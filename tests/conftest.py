"""Shared fixtures: real git repositories in tmp_path, Runicorn run in-process or as a real process."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from runicorn.cli import main

pytest_plugins = ["servers"]  # real sshd and S3 (moto) servers on loopback: tests/servers.py


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """No RUNICORN_* leaks in; HOME and user config live in a temp folder; git identity is fixed."""
    for name in list(os.environ):
        if name.startswith("RUNICORN_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_EDITOR", "true")  # a test that runs `git commit` without -m must not hang
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("RUNICORN_GC_GRACE_PERIOD", "0")


@dataclass
class Result:
    code: int
    out: str
    err: str


def git(cwd: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


class TmpRepo:
    """A real git work tree with Runicorn initialised; `gen` writes files, `rn` runs the CLI."""

    def __init__(self, root: Path):
        self.root = root

    def gen(self, spec: dict, base: Path | None = None) -> None:
        """{'data': {'a.txt': 'x', 'sub': {'b.bin': b'..'}}, 'model.pth': b'..'}"""
        base = base or self.root
        for name, content in spec.items():
            path = base / name
            if isinstance(content, dict):
                path.mkdir(parents=True, exist_ok=True)
                self.gen(content, path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content.encode() if isinstance(content, str) else content)

    def rn(self, *args: str, cwd: Path | None = None) -> Result:
        """Run the CLI in-process (fast); exit code, stdout and stderr captured."""
        out, err = io.StringIO(), io.StringIO()
        old = os.getcwd()
        os.chdir(cwd or self.root)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main(list(args))
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            os.chdir(old)
        return Result(code, out.getvalue(), err.getvalue())

    def rn_proc(self, *args: str, env: dict | None = None, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        """Run the CLI as a real process (`python -m runicorn`)."""
        return subprocess.run([sys.executable, "-m", "runicorn", *args], cwd=kw.pop("cwd", self.root),
                              capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout, **kw)

    def git(self, *args: str, check: bool = True) -> str:
        return git(self.root, *args, check=check)

    def commit(self, message: str = "commit") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def tmp_repo(tmp_path) -> TmpRepo:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    repo = TmpRepo(root)
    result = repo.rn("init")
    assert result.code == 0, result.err
    repo.commit("init runicorn")
    return repo


# -- helpers shared by the test modules (`from conftest import …`) ------------------------------
def ok(result, what: str = ""):
    """RESULT succeeded; returns it. The message shows what the user would have seen."""
    assert result.code == 0, f"{what or 'command'} exited {result.code}:\nstdout: {result.out}\nstderr: {result.err}"
    return result


def pointer(root: Path, rel: str) -> dict:
    return yaml.safe_load((root / (rel + ".rn")).read_text())


def replace(path: Path, data: bytes | str) -> None:
    """Give PATH new content as a new file (never writing through a hardlink)."""
    if path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def write_in_place(path, variant: str) -> None:
    """What a careless script does: open the (read-only, hardlinked) file for update and write.
    VARIANT: 'same-size', 'resize', or 'same-size-old-mtime' (mtime restored afterwards)."""
    st = os.stat(path)
    with open(path, "r+b") as f:  # root ignores the read-only bit
        f.seek(100)
        f.write(b"X" * 100)
        if variant == "resize":
            f.seek(0, os.SEEK_END)
            f.write(b"appended")
    if variant == "same-size-old-mtime":
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    new = os.stat(path)
    assert new.st_ino == st.st_ino  # really in place
    assert (new.st_size != st.st_size) == (variant == "resize")
    assert (new.st_mtime_ns == st.st_mtime_ns) == (variant == "same-size-old-mtime")
