"""Layered settings: defaults < user < `.runicorn.yaml` < `.runicorn/config.local.yaml` < RUNICORN_* env.

Every key is declared in KEYS with its type; a key that is not declared is an error naming it.
Remote settings live under `remote.<name>.<option>` and are checked against REMOTE_OPTIONS.
"""
from __future__ import annotations

import os
import re
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from runicorn.errors import ConfigError, UnknownConfigKeyError

PROJECT_FILE = ".runicorn.yaml"
LOCAL_FILE = ".runicorn/config.local.yaml"
MAX_CONFIG_BYTES = 1 << 20
LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true/false, got {value!r}")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _float(value: Any) -> float:
    return float(value)


def _str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected a string, got {value!r}")
    return "" if value is None else str(value)


def _links(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
    for item in items:
        if item not in LINK_TYPES:
            raise ValueError(f"unknown link type {item!r} (choose from {', '.join(LINK_TYPES)})")
    if not items:
        raise ValueError("at least one link type is needed")
    return list(items)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> float:
    """'90', '30m', '2h', '7d' → seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration such as 30m, 2h or 7d, got {value!r}")
    return float(match.group(1)) * _UNIT[match.group(2)]


def _duration(value: Any) -> str:
    parse_duration(value)
    return str(value)


@dataclass(frozen=True)
class Key:
    default: Any
    parse: Callable[[Any], Any]
    help: str


KEYS: dict[str, Key] = {
    "core.remote": Key("", _str, "name of the default remote"),
    "core.lock_timeout": Key(60.0, _float, "seconds a writing command waits for the repository lock"),
    "core.jobs": Key(0, _int, "parallel hashing/linking workers (0 = number of CPUs)"),
    "core.autostage": Key(False, _bool, "stage written pointers and manifests in git"),
    "core.memo": Key(True, _bool, "use the stat memo to skip re-hashing unchanged files"),
    "cache.dir": Key(".runicorn/cache", _str, "where objects live (relative to the repo root)"),
    "cache.link": Key(["reflink", "hardlink", "copy"], _links, "link types to try, in order"),
    "gc.grace_period": Key("1h", _duration, "objects younger than this are never collected"),
    "artifacts.cache_dir": Key("", _str, "download cache for artifacts used outside a workspace "
                                          "(empty = $XDG_CACHE_HOME/runicorn/artifacts or ~/.cache/runicorn/artifacts)"),
    "viewer.host": Key("127.0.0.1", _str, "address the viewer binds to"),
    "viewer.port": Key(23300, _int, "port the viewer listens on"),
}

REMOTE_OPTIONS: dict[str, Callable[[Any], Any]] = {
    "url": _str, "endpoint_url": _str, "region": _str, "profile": _str, "user": _str,
    "port": _int, "keyfile": _str, "jobs": _int, "access_key_id": _str,
    "secret_access_key": _str, "password": _str, "known_hosts": _str,
}
SECRET_REMOTE_OPTIONS = {"access_key_id", "secret_access_key", "password"}


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases: Runicorn's files never need them, a YAML bomb does."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None):
            raise yaml.YAMLError("anchors and aliases are not allowed")
        return super().compose_node(parent, index)


def strict_yaml_load(data: bytes | str) -> Any:
    """yaml.safe_load without aliases; nesting too deep for the parser is a YAMLError too."""
    try:
        return yaml.load(data, Loader=_StrictLoader)  # noqa: S506 — a SafeLoader subclass
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None


_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "runicorn" / "config.yaml"


def _flatten(data: Any, source: str, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at {prefix or 'top level'}; fix the file")
    flat: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        is_remote_group = key == "remote" or (key.startswith("remote.") and key.count(".") == 1)
        if isinstance(value, dict) and (key in ("core", "cache", "gc", "viewer", "artifacts") or is_remote_group):
            flat.update(_flatten(value, source, key + "."))
        else:
            flat[key] = validate(key, value, source)
    return flat


def validate(key: str, value: Any, source: str = "the command line") -> Any:
    """Parse one value for KEY; raises UnknownConfigKeyError / ConfigError naming the key."""
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "remote":
        parse = REMOTE_OPTIONS.get(parts[2])
    else:
        parse = KEYS[key].parse if key in KEYS else None
    if parse is None:
        raise UnknownConfigKeyError(key, source)
    try:
        return parse(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad value {_short.repr(value)} for {key} in {source}: {_short.repr(str(exc))[1:-1]}") from None


def load_file(path: Path) -> dict[str, Any]:
    """Read one YAML config file into flat, validated keys. A missing file is empty."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes; it is not a Runicorn config")
    try:
        data = strict_yaml_load(raw)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid YAML ({str(exc).splitlines()[0]}); fix the file") from None
    return _flatten(data or {}, str(path))


def _from_env() -> dict[str, Any]:
    """RUNICORN_<SECTION>_<KEY> for every key (RUNICORN_CACHE_DIR → cache.dir), and
    RUNICORN_REMOTE_<NAME>_<OPTION> for remote options (RUNICORN_REMOTE_STORE_PASSWORD)."""
    flat: dict[str, Any] = {}
    for key in KEYS:
        env = "RUNICORN_" + key.replace(".", "_").upper()
        if env in os.environ:
            flat[key] = validate(key, os.environ[env], f"${env}")
    for env, value in os.environ.items():
        if not env.startswith("RUNICORN_REMOTE_"):
            continue
        rest = env[len("RUNICORN_REMOTE_"):].lower()
        for option in sorted(REMOTE_OPTIONS, key=len, reverse=True):
            if rest.endswith("_" + option) and len(rest) > len(option) + 1:
                key = f"remote.{rest[: -len(option) - 1]}.{option}"
                flat[key] = validate(key, value, f"${env}")
                break
    return flat


class Config:
    """Effective settings of one repository (or of no repository: root=None)."""

    def __init__(self, root: Path | None):
        self.root = root
        self.layers: list[tuple[str, dict[str, Any]]] = [("user", load_file(user_config_path()))]
        if root is not None:
            self.layers.append(("project", load_file(root / PROJECT_FILE)))
            self.layers.append(("local", load_file(root / LOCAL_FILE)))
        self.layers.append(("env", _from_env()))
        self.values: dict[str, Any] = {k: v.default for k, v in KEYS.items()}
        for _, layer in self.layers:
            self.values.update(layer)

    def get(self, key: str) -> Any:
        if key in self.values:
            return self.values[key]
        parts = key.split(".")
        if not (len(parts) == 3 and parts[0] == "remote" and parts[2] in REMOTE_OPTIONS):
            raise UnknownConfigKeyError(key, "the command line")
        raise ConfigError(f"config key {key} is not set; set it with `runicorn config set {key} VALUE`")

    def origin(self, key: str) -> str:
        found = "default"
        for name, layer in self.layers:
            if key in layer:
                found = name
        return found

    def remotes(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, value in self.values.items():
            if key.startswith("remote."):
                _, name, option = key.split(".", 2)
                out.setdefault(name, {})[option] = value
        return out


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Flat dotted keys → the nested mapping written to YAML files."""
    nested: dict[str, Any] = {}
    for key, value in sorted(flat.items()):
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested
