"""The basic loop a user runs first: add, commit to git, change, restore."""
from __future__ import annotations

import hashlib


def test_add_commit_checkout_roundtrip(tmp_repo):
    tmp_repo.gen({"data": {"a.csv": "1,2\n", "sub": {"b.bin": b"\x00" * 4096}}, "model.pth": b"weights-v1"})
    result = tmp_repo.rn("add", "data", "model.pth")
    assert result.code == 0, result.err
    assert (tmp_repo.root / "data.rn").is_file() and (tmp_repo.root / "model.pth.rn").is_file()
    first = tmp_repo.commit("v1")
    assert tmp_repo.git("status", "--porcelain") == ""

    (tmp_repo.root / "model.pth").unlink()
    (tmp_repo.root / "model.pth").write_bytes(b"weights-v2")
    assert tmp_repo.rn("status", "--exit-code").code == 1
    assert tmp_repo.rn("add", "model.pth").code == 0
    tmp_repo.commit("v2")

    tmp_repo.git("checkout", "-q", first)
    result = tmp_repo.rn("checkout")
    assert result.code == 0, result.err
    assert (tmp_repo.root / "model.pth").read_bytes() == b"weights-v1"
    oid = hashlib.sha256(b"weights-v1").hexdigest()
    assert f"oid: {oid}" in (tmp_repo.root / "model.pth.rn").read_text()
    assert tmp_repo.rn("status", "--exit-code").code == 0
