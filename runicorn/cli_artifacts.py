"""The command line for artifacts list/versions/info/stats/delete/alias/stage/diff/download/lineage/cache; registered on runicorn.cli.app."""
from __future__ import annotations
