"""`import runicorn.artifacts`: the artifact API for users, plus the registry shortcuts of seed 003.

Everything lives in `runicorn.core.artifacts`; this module re-exports it (the seed guide's
troubleshooting check is `python -c "import runicorn.artifacts"`) and adds `log_model` /
`use_model`, which act on the current run (`rn.init`) like `rn.log_artifact` / `rn.use_artifact`.
"""
from __future__ import annotations

from pathlib import Path

from runicorn.core.artifacts import *  # noqa: F401,F403
from runicorn.core.artifacts import __all__ as _core_all
from runicorn.core.artifacts import Artifact, set_stage

__all__ = [*_core_all, "log_model", "use_model"]


def log_model(path, registered_model_name: str, version: str | None = None, tags=None,
              description: str | None = None, aliases=None, stage: str | None = None):
    """Log the model file or folder PATH as the next version of REGISTERED_MODEL_NAME (type model);
    with STAGE, move it there too (the registry rules apply). VERSION, a label of your own, is kept
    in the metadata as `version_label` (the version number is automatic). Returns the version."""
    from runicorn import sdk

    model = Artifact(registered_model_name, type="model", description=description,
                     metadata={"version_label": version} if version else None)
    if Path(path).is_dir():
        model.add_dir(path)
    else:
        model.add_file(path)
    if tags:
        model.add_tags(*tags)
    number = sdk.log_artifact(model, aliases=aliases)
    if stage:
        for step in _stage_path(stage):
            set_stage(model._repo, f"{registered_model_name}:v{int(number)}", step)
    return number


def _stage_path(stage: str) -> list[str]:
    """The moves from none to STAGE under the rules: production goes through staging."""
    return {"staging": ["staging"], "production": ["staging", "production"],
            "archived": ["staging", "archived"], "none": []}.get(stage, [stage])


def use_model(name: str, stage: str | None = None, version=None, target_dir=None) -> Path:
    """Download a registered model by STAGE (`production`, `staging`, …) or VERSION (3, "v3",
    an alias; default latest) on the current run, recording the use. Returns its folder."""
    from runicorn import sdk

    spec = stage or (f"v{version}" if isinstance(version, int) else version) or "latest"
    return sdk.use_artifact(f"{name}:{spec}").download(target_dir)
