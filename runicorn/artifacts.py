"""`import runicorn.artifacts` (the seed guide's troubleshooting check): the artifact API by that name.

Everything lives in `runicorn.core.artifacts`; this module only re-exports it for users."""
from __future__ import annotations

from runicorn.core.artifacts import *  # noqa: F401,F403
from runicorn.core.artifacts import __all__  # noqa: F401
