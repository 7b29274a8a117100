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


def test_rn_run_is_the_current_run(tmp_path, monkeypatch):
    """`rn.run` (W&B's `wandb.run`): None before `init`, then the run `init` returned, read anew on each access."""
    import runicorn as rn
    from runicorn import sdk

    monkeypatch.setenv("RUNICORN_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sdk, "run", None)
    assert rn.run is None
    first = rn.init(project="smoke", capture_output=False)
    assert rn.run is first
    second = rn.init(project="smoke", capture_output=False)  # init again finishes the first run
    assert rn.run is second and rn.run is not first
    rn.finish()
