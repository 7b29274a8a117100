"""The documentation keeps up with the code: commands, options, config keys, error classes."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import typer.main
import yaml

from runicorn import cli, config, errors

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CLI_MD = DOCS / "cli.md"
CONFIG_MD = DOCS / "config.md"
ERRORS_MD = DOCS / "errors.md"
EXAMPLE = ROOT / ".runicorn.example.yaml"
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"

DEMO_COMMAND = 'python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/runicorn demo "$(mktemp -d)/demo"'
TEST_COMMAND = "bash .ci/run"


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _commands(group, prefix: tuple[str, ...] = ()):
    """(('config', 'get'), command) for every command and subcommand of the CLI, groups included.

    Duck-typed: typer builds on click, or (recent versions) on its own vendored copy of it.
    """
    for name, command in sorted(group.commands.items()):
        path = prefix + (name,)
        yield path, command
        if hasattr(command, "commands"):
            yield from _commands(command, path)


ALL_COMMANDS = list(_commands(typer.main.get_command(cli.app)))


def test_the_cli_has_commands():
    names = {" ".join(path) for path, _ in ALL_COMMANDS}
    assert {"init", "add", "status", "config", "config get"} <= names


@pytest.mark.parametrize("path", [p for p, _ in ALL_COMMANDS], ids=lambda p: " ".join(p))
def test_every_command_is_in_cli_md(path):
    assert f"runicorn {' '.join(path)}" in _read(CLI_MD), f"`runicorn {' '.join(path)}` is missing from docs/cli.md"


@pytest.mark.parametrize("path,command", ALL_COMMANDS, ids=[" ".join(p) for p, _ in ALL_COMMANDS])
def test_every_option_is_in_cli_md(path, command):
    text = _read(CLI_MD)
    for param in command.params:
        if getattr(param, "param_type_name", None) == "option":
            for flag in param.opts + param.secondary_opts:
                if flag.startswith("--") and flag != "--help":
                    assert flag in text, f"option {flag} of `runicorn {' '.join(path)}` is missing from docs/cli.md"


def test_every_exit_code_is_in_cli_md():
    text = _read(CLI_MD)
    for name in dir(errors):
        if name.startswith("EXIT_"):
            assert re.search(rf"^\| {getattr(errors, name)} \|", text, re.M), f"{name} missing from the exit-code table"


# -- config ---------------------------------------------------------------------------------

def test_every_config_key_is_in_config_md():
    text = _read(CONFIG_MD)
    missing = [key for key in config.KEYS if f"`{key}`" not in text]
    assert not missing, f"docs/config.md does not describe {missing}"


def test_every_remote_option_is_in_config_md():
    text = _read(CONFIG_MD)
    missing = [opt for opt in config.REMOTE_OPTIONS if f"`{opt}`" not in text]
    assert not missing, f"docs/config.md does not describe remote options {missing}"


def test_example_config_is_valid_and_has_every_key_with_its_default():
    flat = config.load_file(EXAMPLE)  # raises on any unknown key or bad value
    for key, spec in config.KEYS.items():
        assert key in flat, f"{key} is missing from .runicorn.example.yaml"
        assert flat[key] == spec.parse(spec.default), f"{key} in .runicorn.example.yaml is not the default"


def test_example_config_names_every_remote_option():
    text = _read(EXAMPLE)
    data = yaml.safe_load(text)
    assert isinstance(data.get("remote"), dict) and data["remote"], "example needs a `remote:` section"
    missing = [opt for opt in config.REMOTE_OPTIONS if not re.search(rf"^\s*#?\s*{opt}:", text, re.M)]
    assert not missing, f".runicorn.example.yaml does not show remote options {missing}"


def test_example_config_keeps_credentials_out_of_active_settings():
    flat = config.load_file(EXAMPLE)
    active = {key.rsplit(".", 1)[-1] for key in flat if key.startswith("remote.")}
    assert not active & config.SECRET_REMOTE_OPTIONS


# -- errors ---------------------------------------------------------------------------------

def _error_classes() -> list[type]:
    found = {}
    for module in (errors, cli):
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, errors.RunicornError):
                found[obj.__name__] = obj
    return [found[name] for name in sorted(found)]


ERROR_CLASSES = _error_classes()

# Plausible values for the constructor parameters the error classes use.
DUMMY_ARGS = {
    "message": "something went wrong; do this next",
    "run_id": "20250930_164512_ghi789",
    "path": "data/train.csv",
    "paths": ["data/a.csv", "data/b.csv", "data/c.csv", "data/d.csv", "data/e.csv", "data/f.csv"],
    "oid": "ab" * 32,
    "oids": ["ab" * 32, "cd" * 32, "ef" * 32, "01" * 32, "23" * 32, "45" * 32],
    "actual": "cd" * 32,
    "where": "the cache",
    "what": "the cache",
    "reason": "contains '/'",
    "key": "core.colour",
    "source": "/repo/.runicorn.yaml",
    "lock_path": "/repo/.runicorn/tmp/repo.lock",
    "timeout": 60.0,
    "rev": "v1",
    "failures": {f"data/{i}.csv": "permission denied" for i in range(7)},
    "corrupt": 1,
    "missing": 2,
    "remote": "storage",
}


def _instantiate(cls: type) -> errors.RunicornError:
    kwargs = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name in DUMMY_ARGS:
            kwargs[name] = DUMMY_ARGS[name]
        elif param.default is inspect.Parameter.empty:
            pytest.fail(f"{cls.__name__}({name}=…): add a plausible value for {name!r} to DUMMY_ARGS")
    return cls(**kwargs)


def test_there_are_error_classes():
    assert errors.RunicornError in ERROR_CLASSES and len(ERROR_CLASSES) > 10


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_is_in_errors_md_with_its_exit_code(cls):
    text = _read(ERRORS_MD)
    assert f"`{cls.__name__}`" in text, f"{cls.__name__} is missing from docs/errors.md"
    rows = [line for line in text.splitlines() if line.startswith(f"| `{cls.__name__}`")]
    assert rows, f"{cls.__name__} has no row in the summary table of docs/errors.md"
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == str(cls.exit_code), f"docs/errors.md gives {cls.__name__} exit {cells[1]}, code says {cls.exit_code}"


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_error_messages_have_no_stray_braces(cls):
    exc = _instantiate(cls)
    for text in (str(exc), exc.message):
        assert "{" not in text and "}" not in text, f"{cls.__name__} message has a stray brace: {text!r}"
    assert isinstance(exc.exit_code, int)


# -- README and CI --------------------------------------------------------------------------

def test_readme_has_the_two_fresh_machine_commands():
    text = _read(README)
    assert DEMO_COMMAND in text
    assert TEST_COMMAND in text


def test_ci_runs_the_test_command():
    text = _read(CI_RUN)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert any("pip install" in line and ".[test]" in line for line in lines), ".ci/run must install the test extra"
    assert any(re.search(r"\bpython -m pytest\b|\bpytest\b", line) for line in lines), ".ci/run must run pytest"


def _anchors(page: Path) -> set[str]:
    """GitHub-style heading slugs of a markdown page."""
    slugs = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _read(page), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


def test_readme_links_every_doc_and_all_doc_links_resolve():
    readme = _read(README)
    for doc in sorted(DOCS.glob("*.md")):
        assert f"docs/{doc.name}" in readme, f"README does not link docs/{doc.name}"
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", _read(page)):
            if re.match(r"^[a-z]+://", target):
                continue
            linked = (page.parent / target) if target else page
            assert linked.exists(), f"{page.relative_to(ROOT)} links to missing {target}"
            if anchor and linked.suffix == ".md":
                assert anchor in _anchors(linked), f"{page.relative_to(ROOT)} links to missing anchor {target}#{anchor}"
