"""The command line for run, runs list/show/compare/delete, index rebuild; registered on runicorn.cli.app."""
from __future__ import annotations
