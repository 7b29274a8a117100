"""In-place writes through hardlinks (SPEC §6 "Hardlinks are safe", issue 2 "Storage").

In hardlink mode a tracked file *is* its cache object (one inode). Root ignores the read-only
bit, so `open(path, 'r+b')` + write changes the cached object too. Every variant — a write that
changes the size, one that keeps it, and one that also restores the old mtime with os.utime — on
a tracked file and on a file inside a tracked folder must be:

* reported by `status` (state damaged or modified, with a message that explains what happened);
* never linked again: a checkout of another path with the same content fails instead of linking
  the damaged object;
* found by `verify` (exit 5, naming the object);
* fixed by re-`add`: the new content is recorded, the damaged object is never served again
  (checking out the old revision fails with a missing/corrupt-object error, never wrong bytes);
* reported and quarantined by `gc` when the damaged object is still reachable.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time

import pytest

from conftest import write_in_place

from storage_invariants import check_cache, object_path

INTEGRITY = 5
VARIANTS = ["resize", "same-size", "same-size-old-mtime"]
TARGETS = {"file": ("model.pth", "model.pth", "copies/model.pth"),  # (tracked path, damaged file, twin)
           "dir-member": ("data", "data/sub/b.bin", "copies/b.bin")}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Damaged:
    def __init__(self, repo, variant: str, target: str, twin: bool = False):
        self.repo, self.variant = repo, variant
        self.tracked, self.file, self.twin = TARGETS[target]
        rng = random.Random(7)
        model, member = rng.randbytes(64 << 10), rng.randbytes(32 << 10)
        repo.gen({"model.pth": model, "data": {"a.csv": "1,2\n", "sub": {"b.bin": member}}})
        if twin:  # `copies/` tracks the same contents; its workspace copy is removed before the damage
            repo.gen({"copies": {"model.pth": model, "b.bin": member}})
        # Files written an hour ago, like real data: their stat is trusted by the memo (not "racy").
        hour_ago = time.time_ns() - 3600 * 10**9
        for p in repo.root.rglob("*"):
            if p.is_file() and ".git" not in p.parts and ".runicorn" not in p.parts:
                os.utime(p, ns=(hour_ago, hour_ago))
        result = repo.rn("add", "model.pth", "data", *(["copies"] if twin else []))
        assert result.code == 0, result.err
        self.v1 = repo.commit("v1")
        if twin:
            shutil.rmtree(repo.root / "copies")
        self.path = repo.root / self.file
        self.original = self.path.read_bytes()
        self.old_oid = sha(self.original)
        self.cache = repo.root / ".runicorn" / "cache"
        assert os.stat(self.path).st_ino == os.stat(object_path(self.cache, self.old_oid)).st_ino, \
            "precondition: the workspace file is hardlinked to its object"
        write_in_place(self.path, variant)
        self.new = self.path.read_bytes()
        assert self.new != self.original
        assert object_path(self.cache, self.old_oid).read_bytes() == self.new  # the object was damaged with it

    def object_still_served(self) -> bool:
        """True when the damaged bytes are still in the cache under the old oid."""
        obj = object_path(self.cache, self.old_oid)
        return obj.exists() and sha(obj.read_bytes()) != self.old_oid


PARAMS = dict(params=[(v, t) for t in TARGETS for v in VARIANTS], ids=lambda p: f"{p[1]}-{p[0]}")


@pytest.fixture(**PARAMS)
def damaged(request, tmp_repo) -> Damaged:
    return Damaged(tmp_repo, *request.param)


@pytest.fixture(**PARAMS)
def damaged_with_twin(request, tmp_repo) -> Damaged:
    return Damaged(tmp_repo, *request.param, twin=True)


def test_status_reports_in_place_edit(damaged):
    repo = damaged.repo
    assert repo.rn("status", "--exit-code").code == 1, "status says clean after an in-place write"
    rows = {r["path"]: r for r in json.loads(repo.rn("status", "--json").out)}
    row = rows[damaged.tracked]
    assert row["state"] in ("damaged", "modified"), row
    text = repo.rn("status")
    assert damaged.tracked in text.out
    said = (text.out + text.err).lower()
    assert "in place" in said or "hardlink" in said, f"status does not explain the in-place write:\n{text.out}{text.err}"
    assert "runicorn add" in said, f"status does not say what to do next:\n{text.out}{text.err}"


def test_checkout_of_another_path_never_links_damaged_object(damaged_with_twin):
    """`copies/` tracks the same content (and was deleted); restoring it must not link the damaged object."""
    damaged = damaged_with_twin
    repo = damaged.repo
    twin = repo.root / damaged.twin
    result = repo.rn("checkout", "copies")
    if twin.exists():
        assert twin.read_bytes() == damaged.original, \
            f"checkout linked the damaged object into {damaged.twin} (exit {result.code}): wrong bytes"
    else:
        assert result.code != 0, "checkout left the twin missing yet reported success"
        assert "corrupt" in result.err or "damaged" in result.err or "missing" in result.err, result.err
    assert not damaged.object_still_served(), "the damaged object is still in the cache under its old oid"


def test_verify_exits_5_naming_object(damaged):
    repo = damaged.repo
    result = repo.rn("verify")
    assert result.code == INTEGRITY, f"verify exited {result.code}: {result.out}{result.err}"
    assert damaged.old_oid in result.out + result.err, "verify does not name the corrupt object"
    assert not damaged.object_still_served()
    check_cache(damaged.cache)  # nothing left under a final name with other content


def test_readd_records_new_content_and_never_serves_old_object(damaged):
    repo = damaged.repo
    result = repo.rn("add", damaged.tracked)
    assert result.code == 0, result.err
    said = result.err.lower()
    assert "in place" in said or "damaged" in said, f"add does not tell the user the old version was damaged:\n{result.err}"
    listing = {r["path"]: r for r in json.loads(repo.rn("ls", damaged.tracked, "--json").out)}
    assert listing[damaged.file]["oid"] == sha(damaged.new), "add did not record the new content"
    assert repo.rn("status", "--exit-code").code == 0
    assert not damaged.object_still_served()
    check_cache(damaged.cache)
    repo.commit("v2")

    # The old revision's object is gone: checking it out must fail, never produce the damaged bytes.
    repo.git("checkout", "-q", damaged.v1)
    result = repo.rn("checkout")
    assert result.code != 0, "checkout of the old revision succeeded although its object was damaged"
    assert "missing" in result.err or "corrupt" in result.err, result.err
    assert repo.rn("status", "--exit-code").code != 0, "status calls the damaged bytes the old version"
    out = repo.root.parent / "old-copy"
    got = repo.rn("get", damaged.file, "--rev", damaged.v1, "-o", str(out))
    assert got.code != 0, "get of the old revision served the damaged object"
    assert not out.exists() or (out.is_file() and out.read_bytes() == damaged.original)


def test_gc_quarantines_damaged_kept_object(damaged):
    repo = damaged.repo
    result = repo.rn("gc", "--yes")
    said = (result.out + result.err).lower()
    assert "damaged" in said or "quarantine" in said, f"gc did not report the damaged object:\n{said}"
    assert not damaged.object_still_served(), "gc kept a damaged object under its name"
    quarantined = [p.name for p in (damaged.cache / "quarantine").glob("*")] if (damaged.cache / "quarantine").is_dir() else []
    assert any(name.startswith(damaged.old_oid) for name in quarantined), quarantined
    assert damaged.path.read_bytes() == damaged.new, "gc changed the workspace"
    check_cache(damaged.cache)


def test_copy_mode_in_place_edit_leaves_cache_intact(tmp_repo):
    """With cache.link copy the workspace file is a private copy: an edit is a plain modification."""
    assert tmp_repo.rn("config", "set", "cache.link", "copy").code == 0
    tmp_repo.gen({"model.pth": b"weights-v1" * 1000})
    assert tmp_repo.rn("add", "model.pth").code == 0
    write_in_place(tmp_repo.root / "model.pth", "same-size")
    rows = json.loads(tmp_repo.rn("status", "--json").out)
    assert rows[0]["state"] == "modified"
    assert tmp_repo.rn("verify").code == 0
    check_cache(tmp_repo.root / ".runicorn" / "cache")
    assert tmp_repo.rn("add", "model.pth").code == 0
    assert tmp_repo.rn("status", "--exit-code").code == 0
