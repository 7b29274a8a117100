"""Storage formats: canonical manifests and pointers, Merkle sharing, object store, index."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3

import pytest

from runicorn.core.repo import Repo
from runicorn.errors import ManifestError, PointerError
from runicorn.storage import manifest, pointer
from runicorn.storage.manifest import Entry
from runicorn.storage.odb import ObjectDB, object_relpath

OID = "ab" * 32


def test_manifest_encoding_is_canonical_json():
    names = ["b", "a", "é", 'quo"te', "emoji😀"]
    tree = {n: Entry("file", OID, i, i % 2 == 0) for i, n in enumerate(names)}
    tree["sub"] = Entry("dir", "cd" * 32, 10, False, 4)
    data = manifest.encode(tree)
    assert data == manifest._reference_encode(tree)
    odd = {"tab\tname": Entry("file", OID, 1), "\x7f": Entry("file", OID, 2)}
    assert manifest.encode(odd) == manifest._reference_encode(odd)
    doc = json.loads(data)
    assert doc["runicorn-tree"] == 1
    assert [e["name"] for e in doc["entries"]] == sorted(tree)
    assert manifest.decode(manifest.tree_oid(tree), data) == tree


def test_manifest_decode_rejects_duplicates_and_unknown_versions():
    row = {"exec": False, "kind": "file", "name": "a", "oid": OID, "size": 1}
    dup = json.dumps({"entries": [row, row], "runicorn-tree": 1}).encode()
    with pytest.raises(ManifestError, match="duplicate"):
        manifest.decode("0" * 64, dup)
    with pytest.raises(ManifestError, match="known version"):
        manifest.decode("0" * 64, json.dumps({"entries": [], "runicorn-tree": 2}).encode())


def test_pointer_round_trip_keeps_unknown_keys_and_canonical_order(tmp_path):
    text = ("runicorn: 1\nsize: 3\npath: data\nowner: team-a\nkind: dir\nhash: sha256\n"
            f"oid: {OID}\nfiles: 2\nmeta: {{b: 1, a: 2}}\n")
    p = pointer.parse(text.encode(), "data.rn")
    assert p.extra == {"owner": "team-a", "meta": {"b": 1, "a": 2}}
    out = p.to_yaml()
    keys = [line.split(":")[0] for line in out.splitlines() if line and not line.startswith(("#", " "))]
    assert keys == ["runicorn", "path", "kind", "hash", "oid", "size", "files", "meta", "owner"]
    assert pointer.parse(out.encode(), "data.rn") == p
    file = tmp_path / "data.rn"
    assert pointer.save(file, p) is True
    assert pointer.save(file, p) is False  # identical: not rewritten


def test_pointer_rejects_aliases_before_building_them():
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    with pytest.raises(PointerError, match="aliases"):
        pointer.parse(bomb.encode(), "x.rn")


def test_object_path_is_the_one_layout(tmp_path):
    odb = ObjectDB(tmp_path)
    oid, created = odb.put_bytes(b"hello")
    assert created and oid == hashlib.sha256(b"hello").hexdigest()
    assert object_relpath(oid) == f"objects/{oid[:2]}/{oid[2:]}"
    assert odb.path(oid) == str(tmp_path / object_relpath(oid))
    assert not os.stat(odb.path(oid)).st_mode & 0o222  # read-only
    assert odb.put_bytes(b"hello") == (oid, False)
    assert not [n for n in os.listdir(tmp_path / "objects" / oid[:2]) if n.startswith(".rn-tmp")]


def test_changing_one_file_rewrites_only_manifests_on_its_path(tmp_repo):
    spec = {f"d{i}": {f"s{j}": {f"f{k}.txt": f"{i}-{j}-{k}" for k in range(3)} for j in range(3)} for i in range(3)}
    tmp_repo.gen({"data": spec})
    assert tmp_repo.rn("add", "data").code == 0
    repo = Repo(tmp_repo.root)
    before = set(repo.odb.iter_oids())
    tmp_repo.rn("unprotect", "data/d1/s2/f0.txt")
    (tmp_repo.root / "data/d1/s2/f0.txt").write_text("changed")
    result = tmp_repo.rn("add", "--json", "data")
    assert result.code == 0, result.err
    new = set(repo.odb.iter_oids()) - before
    # the new file + manifests of data/d1/s2, data/d1 and data: nothing else
    assert len(new) == 4
    assert json.loads(result.out)[0]["new_objects"] == 4


def test_index_uses_wal_and_records_migrations(tmp_repo):
    db = sqlite3.connect(tmp_repo.root / ".runicorn" / "index.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = [r[0] for r in db.execute("SELECT name FROM schema_migrations ORDER BY name")]
    assert names[:2] == ["0001_stat_memo", "0002_memo_by_oid"]


def test_unchanged_file_is_not_hashed_twice(tmp_repo, monkeypatch):
    tmp_repo.gen({"data": {f"f{i}": str(i) for i in range(20)}})
    assert tmp_repo.rn("add", "data").code == 0
    # make the files older than the racy window so the memo trusts them
    for p in (tmp_repo.root / "data").iterdir():
        os.utime(p, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    assert tmp_repo.rn("add", "data").code == 0  # records the memo for the new mtimes
    import runicorn.core.workspace as ws

    calls = []
    real = ws.hash_many
    monkeypatch.setattr(ws, "hash_many", lambda paths, *a, **k: calls.append(list(paths)) or real(paths, *a, **k))
    assert tmp_repo.rn("status", "--exit-code").code == 0
    assert calls == []
