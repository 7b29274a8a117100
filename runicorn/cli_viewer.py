"""The command line for viewer, viewer export; registered on runicorn.cli.app."""
from __future__ import annotations
