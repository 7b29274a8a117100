"""Concurrency (SPEC §6): writers queue on the repo lock, readers never wait, SQLite never says "locked".

All commands run as real processes (`python -m runicorn`), several at once on one repository.
The repo lock is the fcntl lock at `.runicorn/tmp/repo.lock` (runicorn/core/repo.py); the tests
take it themselves with `filelock.UnixFileLock`, the same kind of lock Runicorn takes.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import filelock
import pytest

from storage_invariants import check_cache, check_pointers, parse_pointer

LOCKED = 4
MiB = 1 << 20


def lock_path(repo) -> Path:
    return repo.root / ".runicorn" / "tmp" / "repo.lock"


def popen(repo, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runicorn", *args], cwd=repo.root, text=True,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(procs: list[subprocess.Popen], timeout: float = 120) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append((p.returncode, stdout, stderr))
    return out


def assert_consistent(repo) -> dict[str, str]:
    cache = repo.root / ".runicorn" / "cache"
    present, _ = check_cache(cache)
    return check_pointers(repo.root, cache, present)


def dataset(seed: int, files: int = 200, big: int = 8 * MiB) -> dict:
    rng = random.Random(seed)
    return {"big.bin": rng.randbytes(big), **{f"f{i:03}.csv": rng.randbytes(rng.randint(100, 3000)) for i in range(files)}}


# -- two writers --------------------------------------------------------------------------------

def test_two_adds_at_once_both_succeed(tmp_repo):
    """Two `add`s of different folders started together: both exit 0, one after the other."""
    tmp_repo.gen({"a": dataset(1), "b": dataset(2)})
    results = finish([popen(tmp_repo, "add", "a"), popen(tmp_repo, "add", "b")])
    for code, out, err in results:
        assert code == 0, err
    texts = assert_consistent(tmp_repo)
    assert set(texts) == {"a.rn", "b.rn"}
    assert {parse_pointer(tmp_repo.root / n)["files"] for n in texts} == {201}
    assert tmp_repo.rn("status", "--exit-code").code == 0


def test_many_adds_in_one_folder_keep_every_gitignore_entry(tmp_repo):
    """Four `add`s of files in one folder at once: each writes the same .gitignore; no entry is lost."""
    tmp_repo.gen({f"m{i}.bin": random.Random(i).randbytes(2 * MiB) for i in range(4)})
    results = finish([popen(tmp_repo, "add", f"m{i}.bin") for i in range(4)])
    for code, _, err in results:
        assert code == 0, err
    assert set(assert_consistent(tmp_repo)) == {f"m{i}.bin.rn" for i in range(4)}
    ignored = set((tmp_repo.root / ".gitignore").read_text().splitlines())
    assert {f"/m{i}.bin" for i in range(4)} <= ignored
    tmp_repo.git("add", "-A")
    staged = tmp_repo.git("status", "--porcelain").splitlines()
    assert not [line for line in staged if line.endswith(".bin")], staged  # git ignores all four data files
    assert tmp_repo.rn("status", "--exit-code").code == 0


# -- a lock held by someone else ----------------------------------------------------------------

@pytest.fixture
def tracked(tmp_repo):
    """A repo with a tracked file and folder committed, plus an untracked file to add."""
    tmp_repo.gen({"model.bin": b"weights-v1" * 1000, "data": {"a.csv": "1,2\n", "b.csv": "3,4\n"}})
    assert tmp_repo.rn("add", "model.bin", "data").code == 0
    tmp_repo.commit("v1")
    tmp_repo.gen({"new.bin": b"new data" * 100})
    return tmp_repo


WRITERS = {
    "add": ["add", "new.bin"],
    "commit": ["commit"],
    "checkout": ["checkout"],
    "unprotect": ["unprotect", "model.bin"],
    "gc": ["gc", "--yes"],
}


@pytest.mark.parametrize("command", list(WRITERS))
def test_writer_times_out_on_held_lock(tracked, command):
    repo = tracked
    (repo.root / "data" / "a.csv").unlink()  # so checkout has work to do
    before = sorted((p.relative_to(repo.root).as_posix(), p.stat().st_mode, p.read_bytes())
                    for p in repo.root.rglob("*") if p.is_file() and ".git" not in p.parts and ".runicorn" not in p.parts)
    lock = filelock.UnixFileLock(str(lock_path(repo)))
    lock.acquire()
    try:
        start = time.monotonic()
        done = repo.rn_proc(*WRITERS[command], env={"RUNICORN_CORE_LOCK_TIMEOUT": "1"})
        waited = time.monotonic() - start
    finally:
        lock.release()
    assert done.returncode == LOCKED, f"exit {done.returncode}: {done.stderr}"
    assert "lock" in done.stderr.lower(), done.stderr
    assert waited < 30
    after = sorted((p.relative_to(repo.root).as_posix(), p.stat().st_mode, p.read_bytes())
                   for p in repo.root.rglob("*") if p.is_file() and ".git" not in p.parts and ".runicorn" not in p.parts)
    assert after == before, f"{command} changed the workspace without holding the lock"
    again = repo.rn_proc(*WRITERS[command], env={"RUNICORN_CORE_LOCK_TIMEOUT": "1"})
    assert again.returncode == 0, again.stderr  # free again: the same command goes through


READERS = {
    "status": ["status"],
    "status-json": ["status", "--json"],
    "ls": ["ls"],
    "ls-rev": ["ls", "--rev", "HEAD"],
    "diff": ["diff"],
    "diff-revs": ["diff", "HEAD~1", "HEAD"],
    "log": ["log", "model.bin"],
}


@pytest.mark.parametrize("command", list(READERS))
def test_readers_never_wait_for_the_lock(tracked, command):
    repo = tracked
    repo.rn("unprotect", "model.bin")
    (repo.root / "model.bin").write_bytes(b"weights-v2")  # something for status and diff to report
    lock = filelock.UnixFileLock(str(lock_path(repo)))
    lock.acquire()
    try:
        done = repo.rn_proc(*READERS[command], env={"RUNICORN_CORE_LOCK_TIMEOUT": "1"})
    finally:
        lock.release()
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"
    assert "waiting" not in done.stderr and "lock" not in done.stderr.lower(), done.stderr


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from runicorn.core.repo import Repo
    repo = Repo(Path(sys.argv[1]))
    with repo.lock():
        print("locked", flush=True)
        time.sleep(120)
""")


def test_lock_of_killed_process_does_not_block(tracked):
    """A writer killed with SIGKILL while holding the lock leaves nothing that needs cleaning up."""
    repo = tracked
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(repo.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        blocked = repo.rn_proc("add", "new.bin", env={"RUNICORN_CORE_LOCK_TIMEOUT": "1"})
        assert blocked.returncode == LOCKED, blocked.stderr  # the lock really was held
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_path(repo).exists()  # the lock file stays behind: it must not matter
    done = repo.rn_proc("add", "new.bin", env={"RUNICORN_CORE_LOCK_TIMEOUT": "1"})
    assert done.returncode == 0, done.stderr
    assert set(assert_consistent(repo)) == {"model.bin.rn", "data.rn", "new.bin.rn"}


def test_killed_add_does_not_block_the_next_add(tmp_repo):
    """SIGKILL a real `runicorn add` while it works; the next writer gets the lock at once."""
    tmp_repo.gen({"a": dataset(3, files=300, big=30 * MiB), "b.bin": b"b" * 1000})
    proc = popen(tmp_repo, "add", "a")
    time.sleep(0.4)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done = tmp_repo.rn_proc("add", "b.bin", env={"RUNICORN_CORE_LOCK_TIMEOUT": "1"})
    assert done.returncode == 0, done.stderr
    assert_consistent(tmp_repo)


# -- SQLite: many processes on the stat memo ----------------------------------------------------

def _remove_index(root: Path) -> None:
    for name in ("index.db", "index.db-wal", "index.db-shm"):
        (root / ".runicorn" / name).unlink(missing_ok=True)


@pytest.mark.parametrize("fresh_index", [False, True], ids=["existing-index", "fresh-index"])
def test_eight_processes_on_the_stat_memo(tmp_repo, fresh_index):
    """4 `status` runs over modified files (hashing, reading the memo) + 4 `add`s (writing it), at once.

    With fresh_index the index is deleted first (it is derived state), so all eight race to create
    it and apply its migrations too.
    """
    tmp_repo.gen({f"t{i}": dataset(10 + i, files=150, big=2 * MiB) for i in range(4)})
    assert tmp_repo.rn("add", *[f"t{i}" for i in range(4)]).code == 0
    tmp_repo.commit("tracked")
    tmp_repo.rn("unprotect", *[f"t{i}" for i in range(4)])
    for i in range(4):
        for f in sorted((tmp_repo.root / f"t{i}").iterdir())[:40]:
            f.write_bytes(f.read_bytes() + b"changed")
    tmp_repo.gen({f"n{i}": dataset(20 + i, files=150, big=2 * MiB) for i in range(4)})
    for round_ in range(2):
        if fresh_index:
            _remove_index(tmp_repo.root)
        commands = [["status", "--json"]] * 4 + [["add", f"n{i}" if round_ == 0 else f"t{i}"] for i in range(4)]
        procs = [popen(tmp_repo, *args) for args in commands]
        for args, (code, out, err) in zip(commands, finish(procs)):
            assert "locked" not in (out + err).lower(), f"runicorn {' '.join(args)}: {err}"
            assert code == 0, f"runicorn {' '.join(args)} (round {round_}) exited {code}: {err}"
    texts = assert_consistent(tmp_repo)
    assert set(texts) == {f"t{i}.rn" for i in range(4)} | {f"n{i}.rn" for i in range(4)}
    assert tmp_repo.rn("status", "--exit-code").code == 0


MEMO_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from runicorn.storage.index import Index, StatMemo
    path, worker, start = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    while time.time() < start:
        time.sleep(0.001)
    index = Index(path)          # all workers open (and maybe create) the index at the same moment
    memo = StatMemo(index)
    for batch in range(100):
        base = worker * 1_000_000 + batch * 20
        memo.put_many((base + k, k, batch, batch, f"{worker:02d}{batch:04d}{k:02d}".ljust(64, "0")) for k in range(20))
        memo._rows = None        # re-read, as a new process would
        assert memo.get(base, 0, batch, batch) is not None
    print("ok", flush=True)
""")


def test_eight_processes_write_the_memo_directly(tmp_path):
    """8 processes × 100 write transactions on a brand-new index file: no "locked", no lost row."""
    db = tmp_path / "index.db"
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", MEMO_WRITER, str(db), str(w), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(8)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert "locked" not in err, err
        assert p.returncode == 0 and out.strip() == "ok", err
    import sqlite3

    from runicorn.storage.index import MIGRATIONS

    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT count(*) FROM memo").fetchone()[0] == 8 * 100 * 20
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in con.execute("SELECT name FROM schema_migrations ORDER BY name")] == \
            sorted(name for name, _ in MIGRATIONS)
    finally:
        con.close()


def test_status_survives_a_file_vanishing_mid_scan(tmp_repo, monkeypatch):
    """Status takes no lock, so a concurrent writer may remove a file between its directory walk and
    its hashing (e.g. the `.rn-tmp-*` link an `add`/`checkout` renames into place). Status must
    report what it sees, not crash with an unexpected FileNotFoundError.
    """
    from runicorn.core import workspace

    tmp_repo.gen({"t": {f"f{i}.csv": f"{i}\n" for i in range(10)}})
    assert tmp_repo.rn("add", "t").code == 0
    tmp_repo.rn("unprotect", "t")
    (tmp_repo.root / "t" / "f1.csv").write_text("changed\n")
    in_flight = tmp_repo.root / "t" / ".rn-tmp-f2.csv-0123456789ab"  # what a concurrent link leaves for a moment
    in_flight.write_text("2\n")
    real = workspace.hash_many

    def vanish_then_hash(paths, *args, **kwargs):
        if in_flight.exists():
            in_flight.unlink()  # the concurrent writer renames it away right now
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(workspace, "hash_many", vanish_then_hash)
    result = tmp_repo.rn("status")
    assert "unexpected error" not in result.err, result.err
    assert result.code == 0, result.err
    assert "t: modified" in result.out or "t: damaged" in result.out, result.out
