"""`runicorn config get / set / unset / list`: read and write the layered settings files."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from runicorn import config as cfg
from runicorn.errors import RunicornError
from runicorn.storage.fsutil import atomic_write
from runicorn.storage.lock import repo_lock

import yaml

SCOPES = ("project", "local", "user")


def scope_file(root: Path | None, scope: str) -> Path:
    if scope == "user":
        return cfg.user_config_path()
    if root is None:
        raise RunicornError(f"--scope {scope} needs a Runicorn repository; run `runicorn init` or use --scope user")
    return root / (cfg.PROJECT_FILE if scope == "project" else cfg.LOCAL_FILE)


def _write(path: Path, flat: dict[str, Any]) -> None:
    header = cfg_header(path)
    body = yaml.safe_dump(cfg.nest(flat), sort_keys=True, default_flow_style=False) if flat else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (header + body).encode())


def _locked(root: Path | None):
    """Settings files are written under the repository lock (like every other write)."""
    if root is None or not (root / ".runicorn").is_dir():
        return contextlib.nullcontext()
    timeout = cfg.Config(root).get("core.lock_timeout")
    return repo_lock(root / ".runicorn" / "tmp" / "repo.lock", timeout)


def cfg_header(path: Path) -> str:
    if path.name == cfg.PROJECT_FILE:
        return "# Runicorn project settings, committed with the repository.\n"
    return ""


def set_value(root: Path | None, key: str, value: str, scope: str = "project") -> Any:
    if scope == "project" and _secret(key):
        raise RunicornError(f"{key} is a credential; store it with --scope local (never in the committed .runicorn.yaml)")
    parsed = cfg.validate(key, value)
    path = scope_file(root, scope)
    with _locked(root):
        flat = cfg.load_file(path)
        flat[key] = parsed
        _write(path, flat)
    return parsed


def unset_value(root: Path | None, key: str, scope: str = "project") -> bool:
    path = scope_file(root, scope)
    with _locked(root):
        flat = cfg.load_file(path)
        if key not in flat:
            return False
        del flat[key]
        _write(path, flat)
    return True


def list_values(root: Path | None) -> list[dict]:
    """Every effective setting; credentials are masked (read one with `config get`)."""
    conf = cfg.Config(root)
    return [{"key": k, "value": "****" if _secret(k) else v, "origin": conf.origin(k)}
            for k, v in sorted(conf.values.items())]


def _secret(key: str) -> bool:
    return key.startswith("remote.") and key.rsplit(".", 1)[-1] in cfg.SECRET_REMOTE_OPTIONS


def get_value(root: Path | None, key: str) -> Any:
    return cfg.Config(root).get(key)
