"""Config layering: defaults < user < .runicorn.yaml < .runicorn/config.local.yaml < RUNICORN_* env."""
from __future__ import annotations

import json

import yaml

from runicorn.config import KEYS, Config


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


def test_each_layer_overrides_the_one_below(tmp_repo, monkeypatch, tmp_path):
    user = tmp_path / "home" / ".config" / "runicorn" / "config.yaml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.delenv("RUNICORN_GC_GRACE_PERIOD")
    root = tmp_repo.root
    assert Config(root).get("core.lock_timeout") == KEYS["core.lock_timeout"].default

    _write(user, {"core": {"lock_timeout": 11, "jobs": 3}})
    assert Config(root).get("core.lock_timeout") == 11.0
    _write(root / ".runicorn.yaml", {"core": {"lock_timeout": 22}})
    assert Config(root).get("core.lock_timeout") == 22.0
    _write(root / ".runicorn" / "config.local.yaml", {"core": {"lock_timeout": 33}})
    assert Config(root).get("core.lock_timeout") == 33.0
    monkeypatch.setenv("RUNICORN_CORE_LOCK_TIMEOUT", "44")
    conf = Config(root)
    assert conf.get("core.lock_timeout") == 44.0 and conf.origin("core.lock_timeout") == "env"
    assert conf.get("core.jobs") == 3 and conf.origin("core.jobs") == "user"


def test_cache_dir_from_environment_moves_the_cache(tmp_repo, monkeypatch, tmp_path):
    cache = tmp_path / "shared-cache"
    monkeypatch.setenv("RUNICORN_CACHE_DIR", str(cache))
    tmp_repo.gen({"model.pth": b"weights"})
    assert tmp_repo.rn("add", "model.pth").code == 0
    assert any((cache / "objects").rglob("*")), "objects must land in RUNICORN_CACHE_DIR"


def test_config_set_get_list_and_scopes(tmp_repo):
    assert tmp_repo.rn("config", "set", "core.jobs", "4").code == 0
    assert "jobs: 4" in (tmp_repo.root / ".runicorn.yaml").read_text()
    assert tmp_repo.rn("config", "set", "core.jobs", "6", "--scope", "local").code == 0
    assert tmp_repo.rn("config", "get", "core.jobs").out.strip() == "6"
    rows = json.loads(tmp_repo.rn("config", "list", "--json").out)
    assert {"key": "core.jobs", "value": 6, "origin": "local"} in rows
    assert tmp_repo.rn("config", "unset", "core.jobs", "--scope", "local").code == 0
    assert tmp_repo.rn("config", "get", "core.jobs").out.strip() == "4"


def test_bad_values_and_unknown_keys_name_the_key(tmp_repo):
    result = tmp_repo.rn("config", "set", "core.nonsense", "1")
    assert result.code == 1 and "core.nonsense" in result.err
    result = tmp_repo.rn("config", "set", "core.jobs", "many")
    assert result.code == 1 and "core.jobs" in result.err
    result = tmp_repo.rn("config", "set", "cache.link", "hardlink,teleport")
    assert result.code == 1 and "teleport" in result.err
    (tmp_repo.root / ".runicorn.yaml").write_text("cache:\n  colour: blue\n")
    result = tmp_repo.rn("status")
    assert result.code == 1 and "cache.colour" in result.err and "\n" not in result.err.strip()


def test_credentials_never_go_to_the_committed_file(tmp_repo):
    result = tmp_repo.rn("config", "set", "remote.store.secret_access_key", "s3cr3t")
    assert result.code == 1 and "--scope local" in result.err
    assert "s3cr3t" not in (tmp_repo.root / ".runicorn.yaml").read_text()
    assert tmp_repo.rn("config", "set", "remote.store.secret_access_key", "s3cr3t", "--scope", "local").code == 0
    assert tmp_repo.git("check-ignore", ".runicorn/config.local.yaml").strip() == ".runicorn/config.local.yaml"
