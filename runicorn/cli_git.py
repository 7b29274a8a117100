"""The command line for install-hooks, uninstall-hooks and the git merge driver for pointers; registered on runicorn.cli.app."""
from __future__ import annotations
