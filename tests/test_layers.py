"""Imports point one way: interfaces → core → storage → shared (see docs/architecture.md)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "runicorn"

INTERFACES = ("runicorn.cli", "runicorn.console", "runicorn.viewer", "typer", "rich", "fastapi")
FORBIDDEN = {
    "storage": ("runicorn.core",) + INTERFACES,
    "core": INTERFACES,
}
GIT_LIBRARIES = ("pygit2", "dulwich")
GIT_MODULE = PACKAGE / "storage" / "git.py"
SHARED = (PACKAGE / "errors.py", PACKAGE / "config.py")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module PATH imports, anywhere in the file (also inside functions), as absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _hits(imported: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imported if any(m == f or m.startswith(f + ".") for f in forbidden))


def _files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).glob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_has_modules(layer):
    assert _files(layer), f"runicorn/{layer}/ has no modules"


@pytest.mark.parametrize("path", _files("storage"), ids=lambda p: f"storage/{p.name}")
def test_storage_imports_neither_core_nor_interfaces(path):
    bad = _hits(imports_of(path), FORBIDDEN["storage"])
    assert not bad, f"runicorn/storage/{path.name} imports {bad}; storage must not depend on core or interfaces"


@pytest.mark.parametrize("path", _files("core"), ids=lambda p: f"core/{p.name}")
def test_core_imports_no_interface(path):
    bad = _hits(imports_of(path), FORBIDDEN["core"])
    assert not bad, f"runicorn/core/{path.name} imports {bad}; core must not depend on an interface"


@pytest.mark.parametrize("path", SHARED, ids=lambda p: p.name)
def test_shared_modules_import_only_shared(path):
    own = {_module_name(p) for p in SHARED}
    bad = sorted(m for m in imports_of(path)
                 if (m == "runicorn" or m.startswith("runicorn.")) and not any(m == o or m.startswith(o + ".") for o in own))
    assert not bad, f"runicorn/{path.name} imports {bad}; errors.py and config.py may import only each other"


def test_git_libraries_only_in_storage_git():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == GIT_MODULE:
            continue
        bad = _hits(imports_of(path), GIT_LIBRARIES)
        if bad:
            offenders[str(path.relative_to(PACKAGE.parent))] = bad
    assert not offenders, f"pygit2/dulwich may be imported only in runicorn/storage/git.py: {offenders}"


def test_storage_git_uses_the_git_libraries():
    assert _hits(imports_of(GIT_MODULE), GIT_LIBRARIES), "storage/git.py is where git access lives"


def test_import_walker_sees_relative_and_nested_imports(tmp_path):
    pkg = tmp_path / "runicorn" / "core"
    pkg.mkdir(parents=True)
    probe = pkg / "probe.py"
    probe.write_text("from ..console import out\ndef f():\n    import rich.progress\n    from . import add\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "runicorn"
    try:
        found = imports_of(probe)
    finally:
        PACKAGE = saved
    assert {"runicorn.console", "rich.progress", "runicorn.core", "runicorn.core.add"} <= found
    assert _hits(found, FORBIDDEN["core"]) == ["rich.progress", "runicorn.console", "runicorn.console.out"]
