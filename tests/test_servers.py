"""The real-server fixtures (tests/servers.py) work: SFTP through sshfs, S3 through s3fs, restarts."""
from __future__ import annotations

import os

import asyncssh
import pytest

PAYLOAD = os.urandom(300_000)


def test_sftp_put_get_rename_ls(sshd_server, tmp_path):
    fs = sshd_server.filesystem()
    base = f"{sshd_server.root}/roundtrip"
    fs.makedirs(base, exist_ok=True)
    (tmp_path / "up.bin").write_bytes(PAYLOAD)
    fs.put_file(str(tmp_path / "up.bin"), f"{base}/tmp.part")
    fs.mv(f"{base}/tmp.part", f"{base}/final.bin")
    assert fs.ls(base, detail=False) == [f"{base}/final.bin"]
    assert fs.info(f"{base}/final.bin")["size"] == len(PAYLOAD)
    fs.get_file(f"{base}/final.bin", str(tmp_path / "down.bin"))
    assert (tmp_path / "down.bin").read_bytes() == PAYLOAD


def test_sshd_kill_drops_connections_and_restart_keeps_files(sshd_server):
    fs = sshd_server.filesystem()
    path = f"{sshd_server.root}/survivor.bin"
    fs.pipe_file(path, PAYLOAD)
    port, old = sshd_server.port, sshd_server.proc.pid
    sshd_server.kill()
    with pytest.raises((OSError, asyncssh.Error)):  # the live connection died with the server
        fs.cat_file(path)
    sshd_server.start()
    assert (sshd_server.port, sshd_server.proc.pid != old) == (port, True)
    assert sshd_server.filesystem().cat_file(path) == PAYLOAD
    sshd_server.kill_and_restart()
    assert sshd_server.filesystem().cat_file(path) == PAYLOAD


def test_s3_put_get_ls_delete(s3_server, tmp_path):
    s3_server.reset()  # the bucket is shared by the session: other suites leave their prefixes
    fs = s3_server.filesystem()
    base = f"{s3_server.bucket}/roundtrip"
    (tmp_path / "up.bin").write_bytes(PAYLOAD)
    fs.put_file(str(tmp_path / "up.bin"), f"{base}/a.bin")
    fs.pipe_file(f"{base}/b.bin", b"small")
    assert sorted(fs.ls(base, detail=False)) == [f"{base}/a.bin", f"{base}/b.bin"]
    fs.get_file(f"{base}/a.bin", str(tmp_path / "down.bin"))
    assert (tmp_path / "down.bin").read_bytes() == PAYLOAD
    fs.rm([f"{base}/a.bin", f"{base}/b.bin"])
    fs.invalidate_cache()
    assert not fs.exists(f"{base}/a.bin")
    assert fs.ls(s3_server.bucket, detail=False) == []


def test_s3_kill_and_restart_loses_data_keeps_bucket(s3_server):
    fs = s3_server.filesystem()
    fs.pipe_file(f"{s3_server.bucket}/gone.bin", b"x")
    port = s3_server.port
    s3_server.kill_and_restart()
    assert s3_server.port == port
    fs = s3_server.filesystem()
    assert fs.ls(s3_server.bucket, detail=False) == []  # moto keeps data in memory only
    fs.pipe_file(f"{s3_server.bucket}/back.bin", PAYLOAD)
    assert fs.cat_file(f"{s3_server.bucket}/back.bin") == PAYLOAD


def test_s3_reset_empties_bucket(s3_server):
    fs = s3_server.filesystem()
    fs.pipe_file(f"{s3_server.bucket}/old.bin", b"x")
    s3_server.reset()
    fs.invalidate_cache()
    assert fs.ls(s3_server.bucket, detail=False) == []


def test_fixture_sets_nothing_in_environ(s3_server, sshd_server):
    assert not {s3_server.endpoint_url, sshd_server.keyfile} & set(os.environ.values())
