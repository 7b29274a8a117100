"""Runicorn: git-integrated versioning for machine-learning data, models, runs and artifacts.

`import runicorn as rn` is cheap: the SDK names below load their modules on first use.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    # runs (SPEC §4)
    "init": "runicorn.sdk", "log": "runicorn.sdk", "finish": "runicorn.sdk", "save": "runicorn.sdk",
    "Run": "runicorn.sdk", "use_artifact": "runicorn.sdk", "log_artifact": "runicorn.sdk",
    "run": "runicorn.sdk",  # the current run, or None (looked up on every access, never cached)
    # artifacts
    "Artifact": "runicorn.core.artifacts", "ArtifactCache": "runicorn.core.artifacts",
    # read API: rn.api.open / rn.api.read and queries over runs and artifacts
    "api": "runicorn.api",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runicorn' has no attribute {name!r}")
    value = importlib.import_module(module)
    return value if module.endswith("." + name) else getattr(value, name)
