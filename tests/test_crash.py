"""kill -9 during `add`, `commit`, `checkout` and `gc` (SPEC §6 "Nothing lost").

Two harnesses share one scenario per command (a folder of 300 small files plus one 20 MiB file):

* `test_random_kills[…]` starts a real `python -m runicorn …` process and SIGKILLs it after a
  seeded random delay spread over the command's measured duration (half of the kills uniformly
  over the whole run, half over the part after interpreter start-up, where the work happens),
  at least CRASH_KILLS (default 50) times per command;
* `test_crash_points[…]` kills the process deterministically right before / right after the
  n-th call of a filesystem primitive (os.link, os.rename, os.replace, os.unlink, os.chmod),
  first, middle and last call of each, so the rare windows (between a link and its rename, between
  two pointer writes, between two gc deletions) are always hit.

After every kill:
* every object file under `.runicorn/cache/objects` hashes to its name (temp files may exist,
  a temp file under a final name may not);
* every `*.rn` pointer parses and its oid — and for folders every object of its manifest tree —
  is in the cache;
* every workspace file is as before or as intended (sha256 of its bytes);
then the command is run again (in-process) and the final state must be exactly the intended one:
the intended pointers and bytes, no temp files left in the workspace, read-only objects, and
`runicorn status --exit-code` 0 (for gc: no reachable object deleted, every unreachable one gone).

The repository is reset between kills with git and Runicorn itself (checkout, gc), so one dataset
serves all kills. CRASH_SEED replays another random schedule.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage_invariants import (TMP_PREFIX, Hasher, assert_old_or_new, check_cache, check_pointers,
                                object_path, reachable_from_pointers, temp_files_in_workspace, workspace_state)

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("CRASH_KILLS", "50"))
SEED = int(os.environ.get("CRASH_SEED", "20240611"))
MAX_VIOLATIONS = 6  # stop a campaign after this many broken kills; the report lists them all
TOPS = ["data", "big.bin"]
BIG = 20 << 20
HOOKED = ("link", "rename", "replace", "unlink", "chmod")

# Runs runicorn with os.<fn> wrapped: SIGKILL itself before/after the nth call, or count the calls.
HOOK = r"""
import atexit, json, os, runpy, signal, sys
spec = json.loads(os.environ.pop("RN_CRASH_POINT"))
counts = {}
def wrap(name):
    orig = getattr(os, name)
    def hooked(*args, **kwargs):
        n = counts[name] = counts.get(name, 0) + 1
        hit = spec.get("fn") == name and spec.get("nth") == n
        if hit and spec["when"] == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            return orig(*args, **kwargs)
        finally:  # also when the call fails (link onto an existing name, unlink of a missing file)
            if hit and spec["when"] == "after":
                os.kill(os.getpid(), signal.SIGKILL)
    setattr(os, name, hooked)
for name in spec["hooked"]:
    wrap(name)
if spec.get("count"):
    atexit.register(lambda: open(spec["count"], "w").write(json.dumps(counts)))
sys.argv = ["runicorn", *sys.argv[1:]]
runpy.run_module("runicorn", run_name="__main__", alter_sys=True)
"""


# -- the dataset and its edits ------------------------------------------------------------------

def make_dataset(repo) -> None:
    rng = random.Random(1234)
    repo.gen({"data": {f"d{d}": {f"f{i:03}.txt": rng.randbytes(rng.randint(64, 4096)) for i in range(50)}
                       for d in range(6)}})
    (repo.root / "big.bin").write_bytes(rng.randbytes(BIG))


def edit_to_b(root: Path) -> None:
    """The 'B' edit (only after `runicorn unprotect`): modify, add and delete files, patch the big file."""
    d = root / "data"
    for i in range(10):
        (d / "d0" / f"f{i:03}.txt").write_bytes(b"edited %d\n" % i * 40)
    (d / "d1" / "f000.txt").unlink()
    (d / "d1" / "f001.txt").unlink()
    (d / "new").mkdir()
    for i in range(3):
        (d / "new" / f"n{i}.txt").write_bytes(b"new file %d\n" % i * 30)
    with open(root / "big.bin", "r+b") as f:
        f.seek(BIG // 2)
        f.write(b"B" * 4096)


def ok(result) -> None:
    assert result.code == 0, result.err


# -- process control ------------------------------------------------------------------------------

_startup: list[float] = []


def startup_time() -> float:
    """Wall time of an interpreter that imports the whole CLI and exits (`--version`)."""
    if not _startup:
        t = time.monotonic()
        subprocess.run([sys.executable, "-m", "runicorn", "--version"], capture_output=True, check=True)
        _startup.append(time.monotonic() - t)
    return _startup[0]


def spawn(root: Path, args: list[str], point: dict | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    if point is None:
        cmd = [sys.executable, "-m", "runicorn", *args]
    else:
        cmd = [sys.executable, "-c", HOOK, *args]
        env["RN_CRASH_POINT"] = json.dumps({**point, "hooked": HOOKED})
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def run_killed(root: Path, args: list[str], delay: float) -> tuple[bool, int, str]:
    """Run ARGS; SIGKILL it after DELAY s. Returns (killed, returncode, stderr)."""
    proc = spawn(root, args)
    try:
        _, err = proc.communicate(timeout=delay)
        return False, proc.returncode, err.decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        return True, proc.returncode, err.decode(errors="replace")


def run_point(root: Path, args: list[str], point: dict) -> tuple[int, str]:
    proc = spawn(root, args, point)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode(errors="replace")


def measure(root: Path, args: list[str]) -> float:
    t = time.monotonic()
    proc = spawn(root, args)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode(errors="replace")
    return time.monotonic() - t


# -- checks ---------------------------------------------------------------------------------------

class State:
    def __init__(self, repo):
        self.repo = repo
        self.root = repo.root
        self.cache = repo.root / ".runicorn" / "cache"
        self.hasher = Hasher()

    def workspace(self) -> dict[str, str]:
        return workspace_state(self.root, TOPS, self.hasher)[0]

    def consistent(self) -> tuple[set[str], dict[str, str]]:
        """What holds after any kill: objects match their names, pointers name present objects."""
        present, _ = check_cache(self.cache, self.hasher)
        return present, check_pointers(self.root, self.cache, present)

    def check_final(self, workspace: dict[str, str], pointers: dict[str, str]) -> None:
        _, texts = self.consistent()
        assert texts == pointers, "pointers differ from the intended ones: " + _dict_diff(texts, pointers)
        now = self.workspace()
        assert now == workspace, "workspace differs from the intended state: " + _dict_diff(now, workspace)
        status = self.repo.rn("status", "--exit-code")
        assert status.code == 0, f"status after the rerun: {status.out}{status.err}"
        writable = [p for p in (self.cache / "objects").glob("*/*")
                    if not p.name.startswith(TMP_PREFIX) and p.stat().st_mode & 0o222]
        assert not writable, f"{len(writable)} cache object(s) left writable, e.g. {writable[0]}"
        temps = temp_files_in_workspace(self.root)
        assert not temps, f"temp files left in the workspace after the rerun: {temps}"


def _dict_diff(now: dict, want: dict) -> str:
    keys = sorted(k for k in now.keys() | want.keys() if now.get(k) != want.get(k))
    return "; ".join(f"{k}: now {str(now.get(k, 'absent'))[-90:]!r}, want {str(want.get(k, 'absent'))[-90:]!r}"
                     for k in keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")


def clean_workspace_temps(root: Path) -> None:
    for rel in temp_files_in_workspace(root):
        (root / rel).unlink()


# -- scenarios ------------------------------------------------------------------------------------

class Scenario:
    """One command, a way to reach its pre-command state, and what must hold after a kill / a rerun."""

    name: str
    args: list[str]
    variants: tuple[int, ...] = (0,)  # pre-command states, chosen by the parity of i in prepare(i)
    variant_names = {0: "run", 1: "run"}

    def __init__(self, repo):
        self.repo = repo
        self.s = State(repo)

    def prepare(self, i: int) -> None: ...
    def after_kill(self, i: int) -> None: ...
    def after_finish(self, i: int) -> None: ...

    # -- random kills ---------------------------------------------------------------------------
    def random_kills(self) -> dict:
        rng = random.Random(f"{self.name}-{SEED}")
        t0 = startup_time()
        samples = []
        for i in range(3):  # typical duration: median of three full runs, then of the runs that finish
            self.prepare(-i)
            samples.append(measure(self.repo.root, self.args))
            self.after_finish(-i)
        stats = {"kills": 0, "completed": 0, "startup_s": round(t0, 3), "kills_leaving_temp_files": 0}
        violations: list[str] = []
        i = 0
        while stats["kills"] < KILLS and len(violations) < MAX_VIOLATIONS:
            i += 1
            assert i <= 4 * KILLS, f"{self.name}: only {stats['kills']} kills in {i} runs ({stats})"
            duration = statistics.median(samples[-9:])
            self.prepare(i)
            if i % 2:
                delay = rng.uniform(0.01, duration)
            else:
                delay = rng.uniform(min(0.9 * t0, duration), 1.1 * duration)
            start = time.monotonic()
            killed, code, err = run_killed(self.repo.root, self.args, delay)
            if not killed:
                assert code == 0, f"{self.name} exited {code} without being killed: {err}"
                stats["completed"] += 1
                samples.append(time.monotonic() - start)
            else:
                stats["kills"] += 1
                left = temp_files_in_workspace(self.repo.root)
                stats["kills_leaving_temp_files"] += bool(left)
                problem = self._check_kill_and_rerun(i, left)
                if problem:
                    violations.append(f"kill #{stats['kills']} at {delay:.3f} s: {problem}")
        stats["duration_s"] = round(statistics.median(samples[-9:]), 3)
        print(f"\n{self.name}: {stats}")
        assert not violations, f"{self.name}: {len(violations)} broken kill(s) {stats}:\n" + "\n".join(violations)
        return stats

    # -- deterministic crash points -------------------------------------------------------------
    def crash_points(self) -> list[dict]:
        done, violations = [], []
        for variant in self.variants:
            self.prepare(variant)
            count_file = self.repo.root.parent / f"counts-{self.name}-{variant}.json"
            code, err = run_point(self.repo.root, self.args, {"count": str(count_file)})
            assert code == 0, err
            counts = json.loads(count_file.read_text())
            self.after_finish(variant)
            points = []
            for fn in HOOKED:
                c = counts.get(fn, 0)
                if c:
                    points += [{"fn": fn, "nth": 1, "when": "before"}, {"fn": fn, "nth": (c + 1) // 2, "when": "after"},
                               {"fn": fn, "nth": c, "when": "before"}, {"fn": fn, "nth": c, "when": "after"}]
            unique = list({json.dumps(p, sort_keys=True): p for p in points}.values())
            for j, point in enumerate(unique, start=1):
                self.prepare(variant + 2 * j)  # same parity: the same pre-command state as the counted run
                code, err = run_point(self.repo.root, self.args, point)
                where = (f"{self.variant_names[variant]}: kill {point['when']} os.{point['fn']} call "
                         f"{point['nth']}/{counts[point['fn']]}")
                if code != -signal.SIGKILL:
                    violations.append(f"{where}: the command exited {code} instead of being killed: {err.strip()[-300:]}")
                    continue
                left = temp_files_in_workspace(self.repo.root)
                problem = self._check_kill_and_rerun(variant + 2 * j, left)
                if problem:
                    violations.append(f"{where}: {problem}")
            print(f"\n{self.name} ({self.variant_names[variant]}): {len(unique)} crash points, calls per run {counts}")
            done += unique
        assert not violations, f"{self.name}: {len(violations)} of {len(done)} crash points broke a promise:\n" + \
            "\n".join(violations)
        return done

    def _check_kill_and_rerun(self, i: int, left: list[str]) -> str | None:
        try:
            self.after_kill(i)
        except AssertionError as exc:
            return f"right after the kill: {_first_lines(exc)}"
        finish = self.repo.rn(*self.args)
        if finish.code != 0:
            return f"the rerun failed with exit {finish.code}: {finish.err.strip()[-300:]}"
        try:
            self.after_finish(i)
        except AssertionError as exc:
            return f"after the rerun (temp files the kill left: {left or 'none'}): {_first_lines(exc)}"
        return None


def _first_lines(exc: BaseException, n: int = 4) -> str:
    return " | ".join(str(exc).splitlines()[:n])


class AddScenario(Scenario):
    """`runicorn add data big.bin` on untracked data, from an empty cache and an empty stat memo."""

    name, args = "add", ["add", "data", "big.bin"]

    def __init__(self, repo):
        super().__init__(repo)
        make_dataset(repo)
        self.original = self.s.workspace()
        self.expected: dict = {}

    def prepare(self, i):
        root = self.repo.root
        clean_workspace_temps(root)
        for rel in ("data.rn", "big.bin.rn", ".gitignore"):
            (root / rel).unlink(missing_ok=True)
        objects = self.s.cache / "objects"
        for fan in os.scandir(objects):
            if fan.is_dir(follow_symlinks=False):
                for entry in os.scandir(fan.path):
                    os.unlink(entry.path)
            else:
                os.unlink(fan.path)
        for name in ("index.db", "index.db-wal", "index.db-shm"):
            (root / ".runicorn" / name).unlink(missing_ok=True)

    def after_kill(self, i):
        _, texts = self.s.consistent()
        for rel, text in texts.items():
            assert text == self.expected["pointers"].get(rel), f"{rel} is neither absent nor the intended pointer"
        assert_old_or_new(self.s.workspace(), self.original, self.original)
        gitignore = self.repo.root / ".gitignore"
        if gitignore.exists():
            assert set(gitignore.read_text().splitlines()) <= set(self.expected["gitignore"].splitlines())

    def after_finish(self, i):
        if not self.expected:
            self.expected["pointers"] = self.s.consistent()[1]
            self.expected["gitignore"] = (self.repo.root / ".gitignore").read_text()
            assert set(self.expected["pointers"]) == {"data.rn", "big.bin.rn"}
        self.s.check_final(self.original, self.expected["pointers"])
        assert (self.repo.root / ".gitignore").read_text() == self.expected["gitignore"]


class CommitScenario(Scenario):
    """`runicorn commit` after `unprotect` + an edit of the folder and of the big file."""

    name, args = "commit", ["commit"]

    def __init__(self, repo):
        super().__init__(repo)
        make_dataset(repo)
        ok(repo.rn("add", "data", "big.bin"))
        repo.commit("A")
        self.state_a = self.s.workspace()
        self.pointers_a = self.s.consistent()[1]
        self.expected: dict = {}

    def prepare(self, i):
        clean_workspace_temps(self.repo.root)
        self.repo.git("checkout", "-q", "-f", "HEAD", "--", "data.rn", "big.bin.rn")
        ok(self.repo.rn("checkout", "--force"))
        ok(self.repo.rn("gc", "--workspace", "--yes"))  # the B objects go, so each commit stores them anew
        ok(self.repo.rn("unprotect", "data", "big.bin"))
        edit_to_b(self.repo.root)

    def after_kill(self, i):
        _, texts = self.s.consistent()
        for rel, text in texts.items():
            assert text in (self.pointers_a[rel], self.expected["pointers"][rel]), \
                f"{rel} is neither the old nor the new pointer"
        assert_old_or_new(self.s.workspace(), self.expected["workspace"], self.expected["workspace"])

    def after_finish(self, i):
        if not self.expected:
            self.expected["pointers"] = self.s.consistent()[1]
            self.expected["workspace"] = self.s.workspace()
            assert self.expected["pointers"].keys() == self.pointers_a.keys()
            assert self.expected["pointers"] != self.pointers_a and self.expected["workspace"] != self.state_a
        self.s.check_final(self.expected["workspace"], self.expected["pointers"])


class CheckoutScenario(Scenario):
    """`runicorn checkout` after deleting the workspace copy (odd runs) or switching git revision (even runs)."""

    name, args = "checkout", ["checkout"]
    variants = (0, 1)
    variant_names = {0: "after switching git revision", 1: "after deleting the workspace copy"}

    def __init__(self, repo):
        super().__init__(repo)
        make_dataset(repo)
        ok(repo.rn("add", "data", "big.bin"))
        self.rev_a = repo.commit("A")
        self.state_a = self.s.workspace()
        ok(repo.rn("unprotect", "data", "big.bin"))
        edit_to_b(repo.root)
        ok(repo.rn("commit"))
        repo.commit("B")
        self.state_b = self.s.workspace()
        self.pointers_b = self.s.consistent()[1]
        self.before: dict = {}

    def prepare(self, i):
        root = self.repo.root
        clean_workspace_temps(root)
        if i % 2:
            shutil.rmtree(root / "data")
            (root / "big.bin").unlink()
            self.before = {}
        else:
            self.repo.git("checkout", "-q", self.rev_a)
            ok(self.repo.rn("checkout"))
            self.repo.git("checkout", "-q", "main")
            self.before = self.state_a

    def after_kill(self, i):
        self.s.consistent()
        assert_old_or_new(self.s.workspace(), self.before, self.state_b)  # temp files are listed apart

    def after_finish(self, i):
        self.s.check_final(self.state_b, self.pointers_b)


class GcScenario(Scenario):
    """`runicorn gc --yes` with ~800 unreachable objects: an edited version never committed, plus loose blobs."""

    name, args = "gc", ["gc", "--yes"]

    def __init__(self, repo):
        super().__init__(repo)
        make_dataset(repo)
        ok(repo.rn("add", "data", "big.bin"))
        repo.commit("A")
        self.state_a = self.s.workspace()
        self.pointers_a = self.s.consistent()[1]
        self.reachable = reachable_from_pointers(self.s.cache, self.pointers_a)
        ok(repo.rn("unprotect", "data", "big.bin"))
        edit_to_b(repo.root)
        ok(repo.rn("commit"))
        repo.git("checkout", "-q", "-f", "HEAD", "--", "data.rn", "big.bin.rn")
        ok(repo.rn("checkout", "--force"))
        from runicorn.storage.odb import ObjectDB

        odb = ObjectDB(self.s.cache)
        for n in range(500):
            odb.put_bytes(b"loose object %d\n" % n)
        present, _ = check_cache(self.s.cache, self.s.hasher)
        self.unreachable = present - self.reachable
        assert len(self.unreachable) > 500 and self.reachable <= present
        self.stash = repo.root.parent / "stash"  # hardlinks of the unreachable objects, to restore them cheaply
        self.stash.mkdir()
        for oid in self.unreachable:
            os.link(object_path(self.s.cache, oid), self.stash / oid)

    def prepare(self, i):
        for oid in self.unreachable:
            target = object_path(self.s.cache, oid)
            if not target.exists():
                os.link(self.stash / oid, target)

    def after_kill(self, i):
        present, _ = self.s.consistent()
        lost = self.reachable - present
        assert not lost, f"gc deleted {len(lost)} reachable object(s), e.g. {sorted(lost)[0]}"
        assert_old_or_new(self.s.workspace(), self.state_a, self.state_a)

    def after_finish(self, i):
        present, _ = self.s.consistent()
        assert present == self.reachable, \
            f"{len(present - self.reachable)} unreachable object(s) left, {len(self.reachable - present)} reachable lost"
        self.s.check_final(self.state_a, self.pointers_a)


SCENARIOS = {s.name: s for s in (AddScenario, CommitScenario, CheckoutScenario, GcScenario)}


@pytest.mark.parametrize("command", list(SCENARIOS))
def test_random_kills(tmp_repo, command):
    stats = SCENARIOS[command](tmp_repo).random_kills()
    assert stats["kills"] >= KILLS


@pytest.mark.parametrize("command", list(SCENARIOS))
def test_crash_points(tmp_repo, command):
    points = SCENARIOS[command](tmp_repo).crash_points()
    assert points
