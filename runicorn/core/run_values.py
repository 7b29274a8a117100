"""What `rn.log` does with the values it is given: which are stored and how (`clean`), what a step
may be (`as_step`), `run.summary`, and config as plain data.

Nothing here raises on bad input: a value that cannot be stored is dropped with one warning (through
the WARN_ONCE callback the live run passes in), and the other values of the call are kept.
"""
from __future__ import annotations

import operator
from collections.abc import Mapping, MutableMapping
from typing import Callable, Iterator

MAX_KEY_LEN = 256

WarnOnce = Callable[[str, str], None]  # (tag, message): the message is shown once per tag


def clean(data: Mapping, warn_once: WarnOnce, prefix: str = "", out: dict | None = None) -> dict:
    """DATA as stored: nested dicts folded into "outer/inner" keys, numbers only. A key or value
    that cannot be stored is dropped with a warning, whatever it raises; the others are kept."""
    out = {} if out is None else out
    for key, value in data.items():
        try:
            _clean_one(key, value, prefix, out, warn_once)
        except Exception as exc:  # noqa: BLE001 — one bad value (10**400, a raising __float__) drops one key
            full = prefix + key if isinstance(key, str) else repr(key)
            out.pop(full, None)
            warn_once(f"value{full}", f"metric {full[:60]!r} cannot be stored as a number "
                                      f"({type(exc).__name__}: {str(exc)[:200]}); dropped")
    return out


_good_keys: set[str] = set()  # keys already checked: a training loop logs the same few keys each step


def _good_key(full: str) -> bool:
    if len(full) > MAX_KEY_LEN or any(ord(c) < 32 or c == "\x7f" for c in full):
        return False
    if len(_good_keys) < 100_000:
        _good_keys.add(full)
    return True


def _clean_one(key, value, prefix: str, out: dict, warn_once: WarnOnce) -> None:
    if not isinstance(key, str):
        return warn_once(f"key{key!r}", f"metric key {key!r} is not a string; dropped")
    full = prefix + key
    if not key or (full not in _good_keys and not _good_key(full)):
        return warn_once(f"key{full!r}", f"metric key {full[:60]!r} is empty, longer than {MAX_KEY_LEN} "
                                         "characters or has control characters; dropped")
    if isinstance(value, bool):
        out[full] = int(value)
    elif isinstance(value, (int, float)):
        out[full] = value if isinstance(value, int) and abs(value) < 2**53 else float(value)
    elif isinstance(value, Mapping):
        clean(value, warn_once, full + "/", out)  # nested dicts become "outer/inner" keys
    elif not isinstance(value, (str, bytes)) and hasattr(value, "__float__"):
        out[full] = float(value)  # numpy scalars, 0-d tensors
    else:
        warn_once(f"type{full}", f"metric {full!r} is a {type(value).__name__}, not a number; dropped "
                                 "(put text in run.summary or the config)")


def as_step(step) -> int | None:
    """STEP as an int when it is an integer of any kind (numpy.int64, a 0-d integer tensor: anything
    with `__index__`), None otherwise; a bool is not a step."""
    if isinstance(step, bool) or not hasattr(type(step), "__index__"):
        return None
    try:
        return operator.index(step)
    except Exception:  # noqa: BLE001 — a broken __index__ is a bad step, not a crash
        return None


class Summary(MutableMapping):
    """`run.summary`: what you set, else the last logged value of each metric.

    `rn.log` records each call's raw values in LIVE (one dict update: the summary never lags a log
    call); the flusher records in LAST what it wrote to `metrics.jsonl`. A read cleans the live value
    as the flusher would (flattened keys, numbers only) and falls back to the last written one, so a
    bad value (a string, an overflowing int) never shadows the last good one."""

    def __init__(self, last: dict, live: dict, clean: Callable[[Mapping], dict]):
        self._set: dict = {}
        self._last = last
        self._live = live
        self._clean = clean

    def _values(self) -> dict:
        return {**self._last, **self._clean(dict(self._live)), **self._set}

    def __getitem__(self, key):
        if key in self._set:
            return self._set[key]
        if key in self._live:  # the common case: one value cleaned, not the whole map
            one = self._clean({key: self._live[key]})
            if key in one:
                return one[key]
        return self._values()[key]  # a nested key ("train/loss"), or a value that was dropped

    def __setitem__(self, key, value):
        self._set[key] = value

    def __delitem__(self, key):
        del self._set[key]

    def __iter__(self) -> Iterator:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    def to_dict(self) -> dict:
        return self._values()

    def __repr__(self) -> str:
        return f"Summary({self.to_dict()!r})"


def plain(value):
    """Config as JSON-able plain data (argparse Namespaces, dataclasses, paths …)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "__dict__") and not callable(value):
        return plain(vars(value))
    return str(value)
