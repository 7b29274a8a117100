"""`runicorn remote add / list / remove / modify / default` and opening a configured remote."""
from __future__ import annotations

import re
from pathlib import Path

from runicorn import config as cfg
from runicorn.core import settings
from runicorn.errors import ConfigError, UsageError
from runicorn.storage.remote import ObjectStore, open_store, parse_url

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"remote name {name!r} must be lowercase letters, digits, '-' or '_'")
    return name


def open_remote(repo, name: str | None = None, jobs: int = 0) -> ObjectStore:
    """The remote NAME (default: core.remote, or the only one configured)."""
    remotes = repo.config.remotes()
    name = name or repo.config.get("core.remote") or (next(iter(remotes)) if len(remotes) == 1 else "")
    if not name:
        raise ConfigError("no default remote; add one with `runicorn remote add NAME URL --default` or pass -r NAME")
    if name not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise ConfigError(f"unknown remote {name!r} (configured: {known}); add it with `runicorn remote add {name} URL`")
    return open_store(name, remotes[name], repo.root, jobs)


def add(root: Path, name: str, url: str, default: bool = False, scope: str = "project") -> dict:
    check_name(name)
    parse_url(url, root)  # refuse bad URLs before writing anything
    if f"remote.{name}.url" in cfg.Config(root).values:
        raise UsageError(f"remote {name!r} already exists; change it with `runicorn remote modify {name} url URL`")
    settings.set_value(root, f"remote.{name}.url", url, scope)
    if default:
        settings.set_value(root, "core.remote", name, scope)
    return {"name": name, "url": url, "default": default}


def modify(root: Path, name: str, option: str, value: str, scope: str = "project") -> str:
    """Set one option; returns the file it went to (credentials always go to the local file)."""
    _existing(root, name)
    if option == "url":
        parse_url(value, root)
    if option in cfg.SECRET_REMOTE_OPTIONS and scope == "project":
        scope = "local"  # credentials never go to the committed file
    settings.set_value(root, f"remote.{name}.{option}", value, scope)
    return str(settings.scope_file(root, scope).relative_to(root)) if scope != "user" else "the user config"


def remove(root: Path, name: str) -> None:
    _existing(root, name)
    for scope in ("project", "local"):
        for key in [k for k in cfg.load_file(settings.scope_file(root, scope)) if k.startswith(f"remote.{name}.")]:
            settings.unset_value(root, key, scope)
        if cfg.load_file(settings.scope_file(root, scope)).get("core.remote") == name:
            settings.unset_value(root, "core.remote", scope)


def set_default(root: Path, name: str, scope: str = "project") -> None:
    _existing(root, name)
    settings.set_value(root, "core.remote", name, scope)


def listing(root: Path) -> list[dict]:
    conf = cfg.Config(root)
    default = conf.values.get("core.remote") or ""
    out = []
    for name, options in sorted(conf.remotes().items()):
        shown = {k: ("****" if k in cfg.SECRET_REMOTE_OPTIONS else v) for k, v in sorted(options.items())}
        out.append({"name": name, "url": options.get("url", ""), "default": name == default, "options": shown})
    return out


def _existing(root: Path, name: str) -> None:
    if name not in cfg.Config(root).remotes():
        raise UsageError(f"no remote named {name!r}; list them with `runicorn remote list`")
