"""Remotes: one contract suite over every back end (issue 3; SPEC §2, §3, §6).

Every test runs against a local directory, a real OpenSSH server (sshfs) and an S3-compatible
server (moto through s3fs), all on loopback (tests/servers.py). The `remote` fixture configures the
repository exactly as a user would (`runicorn remote add store URL --default`, then `remote modify`
for the connection options, credentials in the local scope) on a fresh folder / key prefix, so no
test sees another's objects.

What is on a remote is always checked independently of Runicorn: objects are listed and re-hashed
through a fresh fsspec filesystem with hashlib, never through runicorn.storage.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import TmpRepo, git, ok, write_in_place
from servers import free_port

BACKENDS = ["local", "ssh", "s3"]
INTEGRITY = 5
HEX = set("0123456789abcdef")
HOUR_NS = 3600 * 10**9


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_oid(name: str) -> bool:
    return len(name) == 64 and set(name) <= HEX


# --- the remote under test -----------------------------------------------------------------

class RemoteUnderTest:
    """One remote folder / prefix, with an independent fsspec view to inspect and damage it."""

    def __init__(self, kind: str, url: str, root: str, project: dict, local: dict, server=None):
        self.kind, self.url, self.root = kind, url, root
        self.project_options, self.local_options = project, local  # remote modify … (scope)
        self.server = server
        self._fs = None

    # -- configuration, as a user types it
    def configure(self, repo: TmpRepo, add: bool = True) -> None:
        """`remote add store URL --default` (skipped in a clone that got it from git) + options."""
        if add:
            self._ok(repo.rn("remote", "add", "store", self.url, "--default"))
            for key, value in self.project_options.items():
                self._ok(repo.rn("remote", "modify", "store", key, value))
        for key, value in self.local_options.items():
            self._ok(repo.rn("remote", "modify", "store", key, value, "--scope", "local"))

    @staticmethod
    def _ok(result) -> None:
        assert result.code == 0, f"configuring the remote failed ({result.code}): {result.out}{result.err}"

    # -- independent inspection
    @property
    def fs(self):
        if self._fs is None:
            if self.kind == "local":
                from fsspec.implementations.local import LocalFileSystem

                self._fs = LocalFileSystem()
            else:
                self._fs = self.server.filesystem()
        if self.kind == "s3":
            self._fs.invalidate_cache()
        return self._fs

    def reconnect(self) -> None:
        self._fs = None

    def path(self, oid: str) -> str:
        return f"{self.root}/objects/{oid[:2]}/{oid[2:]}"

    def listing(self) -> list[str]:
        """Every file under objects/ (final names and anything else)."""
        fs = self.fs
        try:
            return list(fs.find(f"{self.root}/objects"))
        except FileNotFoundError:
            return []

    def objects(self) -> set[str]:
        found = set()
        for path in self.listing():
            parts = path.rstrip("/").split("/")
            if len(parts) >= 2 and len(parts[-2]) == 2 and is_oid(parts[-2] + parts[-1]):
                found.add(parts[-2] + parts[-1])
        return found

    def read(self, oid: str) -> bytes:
        return self.fs.cat_file(self.path(oid))

    def write(self, oid: str, data: bytes) -> None:
        if self.kind == "local":  # replace, never write through: the file may share an inode
            tmp = Path(self.path(oid) + ".damage")
            tmp.write_bytes(data)
            os.replace(tmp, self.path(oid))
            return
        self.fs.pipe_file(self.path(oid), data)

    def remove(self, oid: str) -> None:
        self.fs.rm_file(self.path(oid))

    def corrupt(self, oid: str) -> bytes:
        """Overwrite OID on the remote with other bytes of the same size; returns them."""
        data = bytearray(self.read(oid))
        assert data, "cannot corrupt an empty object"
        for i in range(0, len(data), max(1, len(data) // 8)):
            data[i] ^= 0xFF
        self.write(oid, bytes(data))
        assert sha(self.read(oid)) != oid
        return bytes(data)

    def mismatched(self) -> list[str]:
        """Objects under a final name whose bytes do not hash to that name (must always be empty)."""
        return sorted(oid for oid in self.objects() if sha(self.read(oid)) != oid)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


def _forget_cached_filesystems() -> None:
    """fsspec keeps one filesystem (and its connection) per set of options for the whole process.
    Each test stands for fresh `runicorn` processes, so it must not inherit a connection an
    earlier test left behind (e.g. one that died with a killed server)."""
    for module, cls in (("sshfs", "SSHFileSystem"), ("s3fs", "S3FileSystem")):
        if module in sys.modules:
            getattr(sys.modules[module], cls).clear_instance_cache()


def _make_remote(backend: str, request, tmp_path: Path) -> RemoteUnderTest:
    unique = uuid.uuid4().hex[:12]
    if backend == "local":
        root = str(tmp_path / "remote-store")
        return RemoteUnderTest("local", root, root, {}, {})
    if backend == "ssh":
        server = request.getfixturevalue("sshd_server")
        root = f"{server.root}/{unique}"
        local = {"keyfile": server.keyfile, "user": server.user, "port": str(server.port), "known_hosts": "none"}
        return RemoteUnderTest("ssh", f"ssh://{server.host}{root}", root, {}, local, server)
    server = request.getfixturevalue("s3_server")
    root = f"{server.bucket}/{unique}"
    project = {"endpoint_url": server.endpoint_url, "region": server.region}
    local = {"access_key_id": server.key, "secret_access_key": server.secret}
    return RemoteUnderTest("s3", f"s3://{root}", root, project, local, server)


@pytest.fixture
def remote(backend, request, tmp_path):
    """A fresh, empty remote location on the back end; `configure(repo)` points a repo at it."""
    _forget_cached_filesystems()
    yield _make_remote(backend, request, tmp_path)
    _forget_cached_filesystems()


# --- data and repositories -----------------------------------------------------------------

def standard_data(seed: int = 1) -> dict:
    """A file plus a nested folder (three levels)."""
    rng = random.Random(seed)
    return {
        "model.pth": rng.randbytes(150_000),
        "data": {
            "a.csv": "id,value\n1,2\n",
            "sub": {"b.bin": rng.randbytes(40_000), "deep": {"c.txt": "deep content\n"}},
            "other": {"d.bin": rng.randbytes(5_000)},
        },
    }


def data_files(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every workspace file outside .git, .runicorn and pointers."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0] in (".git", ".runicorn", ".runicorn.yaml") or not p.is_file() or p.suffix == ".rn" \
                or p.name == ".gitignore":
            continue
        out[rel.as_posix()] = sha(p.read_bytes())
    return out


def snapshot(root: Path) -> dict[str, str]:
    """Every file of the repository (workspace, pointers, config, cache objects), except the SQLite
    index and tmp; folders count in the workspace only (an empty cache skeleton is no change)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith((".git/", ".runicorn/index.db", ".runicorn/tmp")) or rel == ".git":
            continue
        if p.is_dir():
            if not rel.startswith(".runicorn"):
                out[rel] = "dir"
            continue
        out[rel] = sha(p.read_bytes())
    return out


def cache_objects(repo: TmpRepo) -> set[str]:
    objects = repo.root / ".runicorn" / "cache" / "objects"
    if not objects.is_dir():
        return set()
    return {p.parent.name + p.name for p in objects.glob("*/*") if is_oid(p.parent.name + p.name)}


def in_cache(repo: TmpRepo, oid: str) -> bool:
    return (repo.root / ".runicorn" / "cache" / "objects" / oid[:2] / oid[2:]).exists()


def as_json(result) -> dict:
    try:
        return json.loads(result.out)
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON (exit {result.code}):\n{result.out}{result.err}") from None


def track(repo: TmpRepo, spec: dict, *paths: str, message: str = "track data") -> str:
    repo.gen(spec)
    ok(repo.rn("add", *(paths or tuple(spec))), "add")
    return repo.commit(message)


def pushed_repo(repo: TmpRepo, remote: RemoteUnderTest, spec: dict | None = None) -> dict:
    """Configure the remote, track SPEC, commit, push; returns the spec."""
    spec = spec or standard_data()
    remote.configure(repo)
    track(repo, spec)
    ok(repo.rn("push"), "push")
    return spec


def clone(repo: TmpRepo, remote: RemoteUnderTest, tmp_path: Path, name: str = "clone") -> TmpRepo:
    """A fresh `git clone` of REPO, pointed at the same remote (local options set again)."""
    dest = tmp_path / name
    git(tmp_path, "clone", "-q", str(repo.root), str(dest))
    other = TmpRepo(dest)
    remote.configure(other, add=False)
    return other


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected a one-line error, got {len(lines)} lines:\n{stderr}"
    return lines[0]


def proc_env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


# --- push, pull, fetch -------------------------------------------------------------------------

def test_push_then_clone_pull_gives_identical_bytes_and_clean_status(tmp_repo, remote, tmp_path):
    pushed_repo(tmp_repo, remote)
    assert remote.objects() == cache_objects(tmp_repo), "the remote does not hold exactly the cache's objects"
    assert remote.mismatched() == []
    b = clone(tmp_repo, remote, tmp_path)
    result = ok(b.rn("pull", "--json"), "pull")
    assert as_json(result)["transferred"] == len(cache_objects(tmp_repo))
    assert data_files(b.root) == data_files(tmp_repo.root)
    ok(b.rn("status", "--exit-code"), "status in the clone")
    assert b.git("status", "--porcelain") == "", "pull left git-visible changes"


def test_noop_push_transfers_nothing(tmp_repo, remote):
    pushed_repo(tmp_repo, remote)
    before = remote.objects()
    report = as_json(ok(tmp_repo.rn("push", "--json")))
    assert report["transferred"] == 0 and report["bytes"] == 0, report
    assert remote.objects() == before


def test_push_after_one_change_uploads_only_the_file_and_the_manifests_on_its_path(tmp_repo, remote):
    pushed_repo(tmp_repo, remote)
    remote_before, cache_before = remote.objects(), cache_objects(tmp_repo)
    changed = tmp_repo.root / "data" / "sub" / "deep" / "c.txt"
    changed.unlink()  # linked from the cache: replace, never write in place
    changed.write_text("changed deep content\n")
    ok(tmp_repo.rn("add", "data"), "re-add")
    new_locally = cache_objects(tmp_repo) - cache_before
    assert len(new_locally) == 4, "expected 1 file + 3 manifests (deep, sub, data) in the cache"
    report = as_json(ok(tmp_repo.rn("push", "--json"), "push"))
    assert report["transferred"] == 4, f"one file + the 3 manifests on its path should move: {report}"
    assert report["bytes"] == sum(len(remote.read(o)) for o in new_locally), report
    assert remote.objects() - remote_before == new_locally
    assert sha(b"changed deep content\n") in new_locally


def test_granular_push_of_a_sub_path_inside_a_tracked_dir(tmp_repo, remote):
    spec = standard_data()
    remote.configure(tmp_repo)
    track(tmp_repo, spec)
    report = as_json(ok(tmp_repo.rn("push", "data/sub", "--json"), "push data/sub"))
    on_remote = remote.objects()
    sub = spec["data"]["sub"]
    assert {sha(sub["b.bin"]), sha(sub["deep"]["c.txt"].encode())} <= on_remote
    assert len(on_remote) == 4, "data/sub is 2 files + 2 manifests (sub, deep); nothing else should move"
    assert report["transferred"] == 4, report
    outside = [sha(spec["model.pth"]), sha(spec["data"]["a.csv"].encode()), sha(spec["data"]["other"]["d.bin"])]
    assert not set(outside) & on_remote, "granular push uploaded data outside data/sub"
    rows = {r["path"]: r for r in as_json(tmp_repo.rn("status", "--remote", "--json"))["paths"]}
    assert rows["data"]["not_pushed"] > 0 and rows["model.pth"]["not_pushed"] == 1, rows
    assert remote.mismatched() == []


def test_granular_pull_of_a_sub_path_inside_a_tracked_dir(tmp_repo, remote, tmp_path):
    spec = pushed_repo(tmp_repo, remote)
    b = clone(tmp_repo, remote, tmp_path)
    ok(b.rn("pull", "data/sub"), "pull data/sub")
    got = data_files(b.root)
    assert got == {k: v for k, v in data_files(tmp_repo.root).items() if k.startswith("data/sub/")}, got
    assert not in_cache(b, sha(spec["model.pth"])) and not in_cache(b, sha(spec["data"]["other"]["d.bin"]))


def test_fetch_fills_the_cache_without_touching_the_workspace(tmp_repo, remote, tmp_path):
    spec = pushed_repo(tmp_repo, remote)
    b = clone(tmp_repo, remote, tmp_path)
    before = {k: v for k, v in snapshot(b.root).items() if not k.startswith(".runicorn/")}
    report = as_json(ok(b.rn("fetch", "--json"), "fetch"))
    assert report["transferred"] == len(cache_objects(tmp_repo))
    assert {k: v for k, v in snapshot(b.root).items() if not k.startswith(".runicorn/")} == before
    assert cache_objects(b) == cache_objects(tmp_repo)
    # An existing workspace file stays as it was after a fetch of a newer version.
    ok(b.rn("checkout"), "checkout")
    (tmp_repo.root / "model.pth").unlink()
    (tmp_repo.root / "model.pth").write_bytes(b"model v2" * 1000)
    ok(tmp_repo.rn("add", "model.pth"))
    tmp_repo.commit("model v2")
    ok(tmp_repo.rn("push"), "push v2")
    b.git("pull", "-q", "--ff-only")
    ok(b.rn("fetch"), "fetch v2")
    assert (b.root / "model.pth").read_bytes() == spec["model.pth"], "fetch changed the workspace"
    ok(b.rn("checkout"), "checkout v2")
    assert (b.root / "model.pth").read_bytes() == b"model v2" * 1000


def test_status_remote_before_and_after_push(tmp_repo, remote, tmp_path):
    remote.configure(tmp_repo)
    track(tmp_repo, standard_data())
    status = as_json(ok(tmp_repo.rn("status", "--remote", "--json"), "status --remote"))
    assert status["remote"] == "store"
    rows = {r["path"]: r for r in status["paths"]}
    assert set(rows) == {"data", "model.pth"}
    assert rows["model.pth"]["not_pushed"] == 1
    assert rows["data"]["not_pushed"] == 8, rows  # 4 files + 4 manifests (data, sub, deep, other)
    assert tmp_repo.rn("status", "--remote", "--exit-code").code == 1
    ok(tmp_repo.rn("push"), "push")
    for args in (("status", "--remote", "--json"), ("status", "--remote", "store", "--json")):
        after = as_json(ok(tmp_repo.rn(*args)))
        assert all(r["not_pushed"] == r["not_fetched"] == r["unknown"] == 0 for r in after["paths"]), after
    ok(tmp_repo.rn("status", "--remote", "--exit-code"))
    b = clone(tmp_repo, remote, tmp_path)
    rows = {r["path"]: r for r in as_json(b.rn("status", "--remote", "--json"))["paths"]}
    assert all(r["not_fetched"] >= 1 and r["not_pushed"] == 0 for r in rows.values()), rows
    ok(b.rn("pull"))
    after = as_json(ok(b.rn("status", "--remote", "--json")))
    assert all(r["not_pushed"] == r["not_fetched"] == r["unknown"] == 0 for r in after["paths"]), after


# --- verification ----------------------------------------------------------------------------

def test_verify_remote_clean_then_finds_a_corrupt_and_a_missing_object(tmp_repo, remote):
    spec = pushed_repo(tmp_repo, remote)
    result = ok(tmp_repo.rn("verify", "--remote", "store", "--json"), "verify --remote")
    assert as_json(result)["checked"] == len(cache_objects(tmp_repo))
    ok(tmp_repo.rn("verify", "--remote", "store", "--sample", "50"), "verify --remote --sample")
    bad = sha(spec["data"]["sub"]["b.bin"])
    remote.corrupt(bad)
    result = tmp_repo.rn("verify", "--remote", "store")
    assert result.code == INTEGRITY, f"verify --remote exited {result.code}: {result.out}{result.err}"
    assert bad in result.out + result.err, "verify --remote does not name the corrupt object"
    assert tmp_repo.rn("verify", "--remote", "store", "--sample", "100").code == INTEGRITY
    assert in_cache(tmp_repo, bad) and sha((tmp_repo.root / "data/sub/b.bin").read_bytes()) == bad, \
        "verify --remote touched the local copy"
    gone = sha(spec["model.pth"])
    remote.remove(gone)
    result = tmp_repo.rn("verify", "--remote", "store")
    assert result.code == INTEGRITY and gone in result.out + result.err, result.out + result.err


@pytest.mark.parametrize("which", ["file", "manifest"])
def test_pull_refuses_a_corrupt_remote_object(tmp_repo, remote, tmp_path, which):
    spec = pushed_repo(tmp_repo, remote)
    if which == "file":
        bad = sha(spec["model.pth"])
    else:
        bad = tmp_repo.root.joinpath("data.rn").read_text().split("oid:")[1].split()[0]
    remote.corrupt(bad)
    b = clone(tmp_repo, remote, tmp_path)
    result = b.rn("pull")
    assert result.code == INTEGRITY, f"pull of a corrupt object exited {result.code}: {result.out}{result.err}"
    assert bad[:12] in result.err and "store" in result.err, result.err
    assert not in_cache(b, bad), "the corrupt object entered the cache"
    corrupt_digest = sha(remote.read(bad))
    kept = [p for p in (b.root / ".runicorn").rglob("*") if p.is_file() and sha(p.read_bytes()) == corrupt_digest]
    assert all("objects" not in p.relative_to(b.root).parts for p in kept), f"corrupt bytes in the cache: {kept}"
    for rel, digest in data_files(b.root).items():
        assert digest == data_files(tmp_repo.root)[rel], f"{rel} was restored with wrong bytes"


def test_pull_names_paths_missing_on_the_remote_and_restores_the_rest(tmp_repo, remote, tmp_path):
    spec = pushed_repo(tmp_repo, remote)
    remote.remove(sha(spec["data"]["sub"]["b.bin"]))
    b = clone(tmp_repo, remote, tmp_path)
    result = b.rn("pull")
    assert result.code == 1, f"pull exited {result.code}: {result.out}{result.err}"
    said = result.out + result.err
    assert "data/sub/b.bin" in said, f"pull does not name the missing path:\n{said}"
    expected = data_files(tmp_repo.root)
    del expected["data/sub/b.bin"]
    assert data_files(b.root) == expected, "pull did not restore everything else"


# --- gc --remote -------------------------------------------------------------------------------

def _history_with_branch_and_tag(repo: TmpRepo, remote: RemoteUnderTest) -> dict[str, str]:
    """model.pth: A (old commit only), C (tag t1, with data/), B (branch feat), D (main); junk: never committed."""
    remote.configure(repo)
    blobs = {k: (k * 3000).encode() for k in "ABCDJ"}
    repo.gen({"model.pth": blobs["A"]})
    ok(repo.rn("add", "model.pth"))
    repo.commit("A")
    ok(repo.rn("push"))
    (repo.root / "model.pth").unlink()
    repo.gen({"model.pth": blobs["C"], "data": {"x.txt": "tagged\n", "y": {"z.txt": "tagged deep\n"}}})
    ok(repo.rn("add", "model.pth", "data"))
    repo.commit("C")
    repo.git("tag", "t1")
    ok(repo.rn("push"))
    repo.git("checkout", "-q", "-b", "feat")
    (repo.root / "model.pth").unlink()
    repo.gen({"model.pth": blobs["B"]})
    ok(repo.rn("add", "model.pth"))
    repo.commit("B")
    ok(repo.rn("push"))
    repo.git("checkout", "-q", "main")
    ok(repo.rn("checkout", "--force"))
    (repo.root / "model.pth").unlink()
    repo.gen({"model.pth": blobs["D"]})
    ok(repo.rn("add", "model.pth"))
    repo.commit("D")
    repo.gen({"junk.bin": blobs["J"]})
    ok(repo.rn("add", "junk.bin"))
    ok(repo.rn("push"))
    (repo.root / "junk.bin").unlink()
    (repo.root / "junk.bin.rn").unlink()
    return {k: sha(v) for k, v in blobs.items()}


def test_gc_remote_dry_run_then_yes_keeps_every_branch_and_tag(tmp_repo, remote):
    oids = _history_with_branch_and_tag(tmp_repo, remote)
    everything = remote.objects()
    assert {oids[k] for k in "ABCDJ"} <= everything
    plan = as_json(ok(tmp_repo.rn("gc", "--remote", "store", "--dry-run", "--json"), "gc --dry-run"))
    assert set(plan["objects"]) == {oids["A"], oids["J"]}, plan
    assert remote.objects() == everything, "--dry-run deleted something"
    refused = tmp_repo.rn("gc", "--remote", "store")  # stdin is not a terminal: no prompt, no deletion
    assert refused.code != 0 and remote.objects() == everything
    ok(tmp_repo.rn("gc", "--remote", "store", "--yes"), "gc --remote --yes")
    assert remote.objects() == everything - {oids["A"], oids["J"]}
    assert remote.mismatched() == []
    ok(tmp_repo.rn("verify", "--remote", "store"), "verify after gc")


def test_gc_remote_from_a_fresh_clone_reads_manifests_from_the_remote(tmp_repo, remote, tmp_path):
    """An empty cache: the folder manifests gc must read (tag t1's data/) come from the remote."""
    oids = _history_with_branch_and_tag(tmp_repo, remote)
    everything = remote.objects()
    b = clone(tmp_repo, remote, tmp_path)
    b.git("branch", "feat", "origin/feat")
    assert cache_objects(b) == set()
    plan = as_json(ok(b.rn("gc", "--remote", "store", "--dry-run", "--json"), "gc --dry-run in a clone"))
    assert set(plan["objects"]) == {oids["A"], oids["J"]}, plan
    ok(b.rn("gc", "--remote", "store", "--yes"), "gc --remote --yes in a clone")
    assert remote.objects() == everything - {oids["A"], oids["J"]}
    ok(b.rn("pull", "--rev", "t1"), "pull of the tag after gc")


def test_gc_remote_from_a_fresh_clone_keeps_remote_tracking_branches(tmp_repo, remote, tmp_path):
    """A teammate's fresh clone has feat only as refs/remotes/origin/feat; the remote is shared,
    so gc --remote from there must not delete the feat branch's data."""
    oids = _history_with_branch_and_tag(tmp_repo, remote)
    b = clone(tmp_repo, remote, tmp_path)
    plan = as_json(ok(b.rn("gc", "--remote", "store", "--dry-run", "--json"), "gc --dry-run in a clone"))
    assert oids["B"] not in plan["objects"], \
        "gc --remote in a fresh clone would delete the data of branch origin/feat from the shared remote"
    assert set(plan["objects"]) == {oids["A"], oids["J"]}, plan


def test_gc_remote_respects_the_grace_period(tmp_repo, remote, monkeypatch):
    oids = _history_with_branch_and_tag(tmp_repo, remote)
    everything = remote.objects()
    monkeypatch.setenv("RUNICORN_GC_GRACE_PERIOD", "1h")
    plan = as_json(ok(tmp_repo.rn("gc", "--remote", "store", "--yes", "--json"), "gc --remote --yes"))
    assert plan["deleted"] == 0 and plan["kept_young"] == 2, plan
    assert remote.objects() == everything
    assert {oids["A"], oids["J"]} <= remote.objects()


# --- interrupted transfers -------------------------------------------------------------------

def _many_files(repo: TmpRepo, count: int, big_mb: int) -> None:
    rng = random.Random(42)
    repo.gen({"data": {"many": {f"f{i:04d}.txt": f"small file {i} {rng.random()}\n" * 20 for i in range(count)},
                       "big.bin": rng.randbytes(big_mb << 20)}})
    ok(repo.rn("add", "data"), "add")
    repo.commit("many files")


def _start_push(repo: TmpRepo, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runicorn", "push", *args], cwd=repo.root, env=proc_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_first_upload(proc: subprocess.Popen, remote: RemoteUnderTest, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if remote.listing():
            return
        time.sleep(0.02)
    if proc.poll() is None:
        proc.kill()
        raise AssertionError("push did not upload anything in time")


def test_push_killed_mid_transfer_leaves_no_partial_object_and_rerun_completes(tmp_repo, remote):
    remote.configure(tmp_repo)
    _many_files(tmp_repo, 300, 30)
    proc = _start_push(tmp_repo, "-j", "2")
    _wait_for_first_upload(proc, remote)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"push ended (exit {proc.returncode}) before it could be killed: {err}"
    left = remote.objects()
    assert remote.mismatched() == [], "a partial object is visible under its final name"
    assert len(left) < len(cache_objects(tmp_repo))
    report = as_json(ok(tmp_repo.rn("push", "--json"), "rerun of the killed push"))
    assert report["transferred"] == len(cache_objects(tmp_repo) - left), \
        f"the rerun should move only what is missing: {report}"
    assert remote.objects() == cache_objects(tmp_repo)
    assert remote.mismatched() == []
    ok(tmp_repo.rn("verify", "--remote", "store"), "verify --remote after the rerun")


def test_server_killed_mid_transfer_fails_with_one_line_and_rerun_completes(tmp_repo, remote):
    if remote.kind == "local":
        pytest.skip("a local-directory remote has no server to kill")
    remote.configure(tmp_repo)
    _many_files(tmp_repo, 200, 30)
    proc = _start_push(tmp_repo, "-j", "1")
    try:
        _wait_for_first_upload(proc, remote)
        remote.server.kill()
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("push hung after the server died") from None
    finally:
        if remote.server.proc is None:
            remote.server.start()
        remote.reconnect()
    assert proc.returncode not in (0, -signal.SIGKILL), f"push exited {proc.returncode} after the server died"
    line = one_line_error(err)
    assert "store" in line, f"the error does not name the remote: {line}"
    assert "Traceback" not in err
    lost_everything = remote.kind == "s3"  # moto keeps objects in memory only
    if lost_everything:
        assert remote.objects() == set()
    assert remote.mismatched() == []
    rerun = tmp_repo.rn_proc("push", "--json", timeout=180)
    assert rerun.returncode == 0, f"rerun failed ({rerun.returncode}): {rerun.stdout}{rerun.stderr}"
    missing = cache_objects(tmp_repo) - remote.objects()
    assert not missing, (f"after the rerun the remote lacks {len(missing)} object(s): the known-object index "
                         "made push skip objects the remote lost" if lost_everything else f"{len(missing)} missing")
    assert remote.mismatched() == []
    verify = tmp_repo.rn_proc("verify", "--remote", "store")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_upload_interrupted_mid_stream_leaves_nothing_under_the_final_name(tmp_repo, remote):
    """Ctrl-C (or any error) in the middle of one object's upload: the partial bytes must never be
    committed under the object's name. On S3 closing the half-written file would complete the
    multipart upload with what was sent so far; it must be aborted instead."""
    from runicorn.core.remotes import open_remote
    from runicorn.core.repo import Repo

    remote.configure(tmp_repo)
    big = random.Random(7).randbytes(12 << 20)  # more than s3fs's 5 MiB part: a multipart upload
    track(tmp_repo, {"big.bin": big})
    oid = hashlib.sha256(big).hexdigest()
    repo = Repo(tmp_repo.root)
    store = open_remote(repo)
    sent = []

    def interrupt_after_8_mib(n: int) -> None:
        sent.append(n)
        if sum(sent) >= 8 << 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.upload(repo.odb, oid, on_bytes=interrupt_after_8_mib)
    remote.reconnect()
    assert oid not in remote.objects(), "a partial upload appeared under the object's final name"
    assert remote.mismatched() == []
    assert store.upload(repo.odb, oid) == len(big), "the same store could not upload after the interruption"
    remote.reconnect()
    assert remote.read(oid) == big


def test_same_process_recovers_after_a_server_restart(tmp_repo, remote):
    """A long-lived process (SDK, hooks, a notebook) pushes, the server restarts, it pushes again."""
    if remote.kind == "local":
        pytest.skip("a local-directory remote has no server to restart")
    remote.configure(tmp_repo)
    track(tmp_repo, {"first.bin": b"first" * 1000})
    ok(tmp_repo.rn("push"), "first push")
    remote.server.kill_and_restart()  # moto loses its objects, sshd keeps them
    remote.reconnect()
    track(tmp_repo, {"second.bin": b"second" * 1000})
    result = tmp_repo.rn("push")
    assert result.code == 0, f"push in the same process after the server restarted: {result.err}"
    assert cache_objects(tmp_repo) <= remote.objects()


# --- the known-object index is a hint ----------------------------------------------------------

def _wipe(remote: RemoteUnderTest) -> None:
    """The remote loses everything behind our back (wiped, restored from an old backup, moto restart)."""
    remote.fs.rm(remote.root, recursive=True)
    assert remote.objects() == set()


@pytest.mark.parametrize("first_push", ["whole", "sub-path"])
def test_push_reuploads_what_a_wiped_remote_lost(tmp_repo, remote, first_push):
    remote.configure(tmp_repo)
    track(tmp_repo, standard_data())
    ok(tmp_repo.rn("push", *(["data/sub"] if first_push == "sub-path" else [])), "first push")
    _wipe(remote)
    report = as_json(ok(tmp_repo.rn("push", "--json"), "push after the wipe"))
    lacking = cache_objects(tmp_repo) - remote.objects()
    assert not lacking, (f"push skipped {len(lacking)} object(s) the remote lost, trusting the known-object "
                         f"index: {report}")
    ok(tmp_repo.rn("verify", "--remote", "store"), "verify --remote")


def test_push_repairs_a_corrupt_remote_object_as_the_error_advises(tmp_repo, remote, tmp_path):
    """A corrupt remote object is refused with the advice `runicorn push -r store` from a clone
    that has the data; after `verify --remote` has found it too, following that advice must
    repair the remote."""
    spec = pushed_repo(tmp_repo, remote)
    bad = sha(spec["model.pth"])
    remote.corrupt(bad)
    b = clone(tmp_repo, remote, tmp_path)
    refused = b.rn("pull")
    assert refused.code == INTEGRITY, refused.err
    assert "push -r store" in refused.err, refused.err
    assert tmp_repo.rn("verify", "--remote", "store").code == INTEGRITY
    ok(tmp_repo.rn("push", "-r", "store"), "the advised push")
    assert remote.mismatched() == [], \
        "verify --remote + the advised `runicorn push -r store` left the corrupt object on the remote"
    ok(tmp_repo.rn("verify", "--remote", "store"), "verify --remote after the repair")
    ok(b.rn("pull"), "pull after the repair")
    assert data_files(b.root) == data_files(tmp_repo.root)


# --- bad remotes -------------------------------------------------------------------------------

def _unreachable(remote: RemoteUnderTest, how: str, tmp_path: Path) -> None:
    """Point the configured remote somewhere that cannot work."""
    if how == "closed-port":
        if remote.kind == "local":
            blocker = tmp_path / "a-file"
            blocker.write_text("not a folder")
            remote.url = str(blocker / "remote")  # the remote's parent is a file
            remote.root = remote.url
        elif remote.kind == "ssh":
            remote.local_options = {**remote.local_options, "port": str(free_port())}
        else:
            remote.project_options = {**remote.project_options, "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    elif how == "wrong-credentials":
        if remote.kind == "local":
            pytest.skip("a local directory has no credentials")
        if remote.kind == "s3":
            pytest.skip("moto accepts any credentials")
        import asyncssh

        other = tmp_path / "stranger_ed25519"
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
        other.chmod(0o600)
        remote.local_options = {**remote.local_options, "keyfile": str(other)}


GIVE_UP_S = 15  # an unreachable remote must be reported well before a user reaches for Ctrl-C


def _run_all(procs: dict[str, subprocess.Popen], limit: float) -> dict[str, tuple[int | None, str, float]]:
    """Wait for every process (they run at the same time), killing any still running at LIMIT."""
    started, out = time.monotonic(), {}
    for name, proc in procs.items():
        try:
            _, err = proc.communicate(timeout=max(0.1, limit - (time.monotonic() - started)))
            out[name] = (proc.returncode, err, time.monotonic() - started)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            out[name] = (None, err, time.monotonic() - started)
    return out


@pytest.mark.parametrize("how", ["closed-port", "wrong-credentials"])
def test_unreachable_remote_fails_fast_with_one_line_and_changes_nothing(tmp_repo, remote, tmp_path, how):
    """push from a repository with data, pull into a fresh clone: both at once, both must give up
    quickly with one line naming the remote, exit 1, and leave their repository as it was."""
    _unreachable(remote, how, tmp_path)
    remote.configure(tmp_repo)
    track(tmp_repo, standard_data())
    b = clone(tmp_repo, remote, tmp_path)
    repos = {"push": tmp_repo, "pull": b}
    before = {name: snapshot(repo.root) for name, repo in repos.items()}
    procs = {name: subprocess.Popen([sys.executable, "-m", "runicorn", name], cwd=repo.root, env=proc_env(),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True) for name, repo in repos.items()}
    results = _run_all(procs, GIVE_UP_S + 1)
    problems = []
    for name, (code, err, elapsed) in results.items():
        lines = [line for line in err.splitlines() if line.strip()]
        if code is None:
            problems.append(f"{name}: still running after {elapsed:.0f} s (killed)")
            continue
        if code != 1:
            problems.append(f"{name}: exit {code}, expected 1: {err}")
        if len(lines) != 1 or "store" not in lines[0] or "unexpected error" in err or "Traceback" in err:
            problems.append(f"{name}: not a one-line error naming remote 'store': {err!r}")
        if elapsed > GIVE_UP_S:
            problems.append(f"{name}: took {elapsed:.0f} s to give up on an unreachable remote (limit {GIVE_UP_S} s)")
        if snapshot(repos[name].root) != before[name]:
            problems.append(f"{name}: changed the repository")
    assert not problems, "\n".join(problems)


def _traversal_url(remote: RemoteUnderTest) -> list[str]:
    if remote.kind == "local":
        return [f"{remote.root}/../escape", f"file://{remote.root}/%2e%2e/escape"]
    if remote.kind == "ssh":
        return [f"ssh://{remote.server.host}{remote.root}/../../escape"]
    return [f"s3://{remote.root}/../escape"]


def test_remote_url_with_traversal_or_unknown_scheme_is_refused(tmp_repo, remote, monkeypatch):
    remote.configure(tmp_repo)
    config = (tmp_repo.root / ".runicorn.yaml").read_text()
    for url in [*_traversal_url(remote), "ftp://x", "gopher://host/path"]:
        for args in (("remote", "add", "bad", url), ("remote", "modify", "store", "url", url)):
            result = tmp_repo.rn(*args)
            assert result.code != 0, f"{' '.join(args)} was accepted"
            said = result.err.lower()
            if "://" in url and url.split("://")[0] not in ("file", "ssh", "s3"):
                assert "s3://" in said and "ssh://" in said, f"no list of supported schemes: {result.err}"
            else:
                assert ".." in result.err or "travers" in said, result.err
            assert (tmp_repo.root / ".runicorn.yaml").read_text() == config
    monkeypatch.setenv("RUNICORN_REMOTE_STORE_URL", "ftp://x")
    track(tmp_repo, standard_data())
    result = tmp_repo.rn("push")
    assert result.code != 0 and "s3://" in result.err and "ssh://" in result.err, result.err
    assert remote.objects() == set()


# --- in-place edits through a hardlink ----------------------------------------------------------

@pytest.mark.parametrize("variant", ["resize", "same-size-old-mtime"])
def test_object_changed_in_place_is_never_pushed_corrupt(tmp_repo, remote, variant):
    remote.configure(tmp_repo)
    spec = standard_data()
    tmp_repo.gen(spec)
    hour_ago = time.time_ns() - HOUR_NS  # old files: their stat is trusted, as for real data
    for p in (tmp_repo.root / "data").rglob("*"):
        os.utime(p, ns=(hour_ago, hour_ago))
    os.utime(tmp_repo.root / "model.pth", ns=(hour_ago, hour_ago))
    ok(tmp_repo.rn("add", "model.pth", "data"))
    tmp_repo.commit("v1")
    victim = tmp_repo.root / "data" / "sub" / "b.bin"
    oid = sha(spec["data"]["sub"]["b.bin"])
    assert os.stat(victim).st_ino == os.stat(tmp_repo.root / ".runicorn/cache/objects" / oid[:2] / oid[2:]).st_ino, \
        "precondition: the workspace file is hardlinked to its object"
    write_in_place(victim, variant)
    result = tmp_repo.rn("push")
    assert remote.mismatched() == [], f"push uploaded a corrupt object (exit {result.code}: {result.err})"
    if result.code == 0:
        assert oid not in remote.objects(), "push reported success and uploaded the changed object"
        assert oid[:12] in result.out + result.err or "data/sub/b.bin" in result.out + result.err, \
            "push skipped the changed object without saying so"
    else:
        assert result.err.strip(), "push failed silently"
    assert remote.mismatched() == []


# --- credentials ---------------------------------------------------------------------------------

def test_credentials_never_reach_the_committed_config_and_are_masked(tmp_repo, remote):
    remote.configure(tmp_repo)
    track(tmp_repo, standard_data())
    secrets = {"password": "hunter2-pw-7c1d", "access_key_id": "AKIA-key-55aa", "secret_access_key": "s3cr3t-9f0e"}
    if remote.kind == "s3":
        secrets = {"access_key_id": remote.server.key, "secret_access_key": remote.server.secret}
        # already set by configure (scope local); set them again asking for the project scope
    for key, value in secrets.items():
        ok(tmp_repo.rn("remote", "modify", "store", key, value, "--scope", "project"), f"modify {key}")
    committed = (tmp_repo.root / ".runicorn.yaml").read_text()
    local = (tmp_repo.root / ".runicorn" / "config.local.yaml").read_text()
    for key, value in secrets.items():
        assert value not in committed and key not in committed, f"{key} reached .runicorn.yaml:\n{committed}"
        assert value in local, f"{key} is not in .runicorn/config.local.yaml"
    assert tmp_repo.git("check-ignore", ".runicorn/config.local.yaml").strip(), \
        "config.local.yaml is not ignored by git"
    for args in (("remote", "list"), ("remote", "list", "--json")):
        shown = ok(tmp_repo.rn(*args)).out
        for value in secrets.values():
            assert value not in shown, f"`runicorn {' '.join(args)}` shows a credential:\n{shown}"
    listed = as_json(tmp_repo.rn("remote", "list", "--json"))
    assert listed[0]["name"] == "store" and listed[0]["default"] is True
    assert all(listed[0]["options"][k] != v for k, v in secrets.items())
    ok(tmp_repo.rn("push"), "push with the credentials from config.local.yaml")  # they still work
    assert remote.objects()


# --- end to end --------------------------------------------------------------------------------

def test_end_to_end_repo_a_pushes_fresh_clone_b_pulls_every_byte(tmp_repo, remote, tmp_path):
    """As a team would, with a real process for every data command: A tracks, commits, pushes; B clones, pulls."""
    a = tmp_repo
    rng = random.Random(99)
    a.gen({"model.pth": rng.randbytes(2 << 20), "empty.txt": b"",
           "dataset": {f"part{i}": {f"s{j}.bin": rng.randbytes(rng.randrange(1, 20_000)) for j in range(15)}
                       for i in range(4)} | {"README.md": "# dataset\n", "nested": {"deep": {"leaf.txt": "leaf\n"}}}})
    remote.configure(a)  # configuration in-process (fast); every transfer below is a real process
    done = a.rn_proc("add", "model.pth", "empty.txt", "dataset")
    assert done.returncode == 0, done.stderr
    a.commit("data")
    done = a.rn_proc("push")
    assert done.returncode == 0, done.stderr
    assert "pushed" in done.stdout
    b_root = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(a.root), str(b_root))
    b = TmpRepo(b_root)
    remote.configure(b, add=False)
    done = b.rn_proc("pull")
    assert done.returncode == 0, done.stdout + done.stderr
    expected = data_files(a.root)
    assert len(expected) == 4 * 15 + 4
    assert data_files(b.root) == expected, "B's bytes differ from A's"
    done = b.rn_proc("status", "--exit-code")
    assert done.returncode == 0, f"status in B is not clean: {done.stdout}{done.stderr}"
    assert b.git("status", "--porcelain") == ""
    assert remote.mismatched() == []
