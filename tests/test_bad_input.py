"""Bad input and faults (issue 2, SPEC §2 and §6): hostile pointers, manifests, config and symlinks.

Every hostile or malformed input must be refused with a non-zero exit and ONE line of output that
names the bad file (or key), with no stray `{`/`}` and no raw control characters, and nothing may
be written anywhere: the whole tmp_path (the repository, its `.git`, its cache, and the folders
next to it) and HOME are snapshotted (type, mode, inode, size, mtime, symlink target) before and
after the command and must be identical. The only exceptions are the repository lock's own files
(`.runicorn/tmp/repo.lock` and `.owner`), which every writing command touches before it reads
anything; the template repository has already created them, so their folder does not change.

To keep the suite fast, one template repository is built per session and copied for each test.
Its workspace is "armed": a tracked file and a file inside a tracked folder are deleted (so a
checkout that wrongly went ahead would write them back) and an unreferenced object sits in the
cache (so a gc that wrongly went ahead would delete it).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from conftest import Result, TmpRepo, git

GOOD = b"good data\n"
GOOD_OID = hashlib.sha256(GOOD).hexdigest()
ORPHAN = b"an object nothing refers to; gc may delete it only when it runs to completion\n"
ORPHAN_OID = hashlib.sha256(ORPHAN).hexdigest()
SECRET = b"TOP-SECRET-9f2c1e: must never enter the cache\n"
# Not part of the comparison: the lock's own files, and the SQLite index (derived, rebuildable state whose
# -wal/-shm side files SQLite creates and touches whenever any command, even a read-only one, opens it).
UNCOMPARED = {".runicorn/tmp/repo.lock", ".runicorn/tmp/repo.lock.owner", ".runicorn/index.db",
              ".runicorn/index.db-wal", ".runicorn/index.db-shm", ".runicorn/index.db-journal"}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

COMMANDS = {
    "checkout": ("checkout",),
    "status": ("status",),
    "ls": ("ls",),
    "verify": ("verify",),
    "gc": ("gc", "--yes"),
}


# --------------------------------------------------------------------------- helpers
def snapshot(*roots: Path) -> dict:
    """Every entry under ROOTS (not following symlinks): kind/mode, inode, size, mtime, link target."""
    state: dict = {}
    for root in roots:
        _scan(str(root), root.name, state)
    return state


def _scan(path: str, key: str, state: dict) -> None:
    st = os.lstat(path)
    if key.endswith("repo/.runicorn"):  # its entries are compared; its mtime moves with the index's
        state[key] = (st.st_mode, st.st_ino)
    else:
        state[key] = (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns,
                      os.readlink(path) if stat.S_ISLNK(st.st_mode) else None)
    if stat.S_ISDIR(st.st_mode):
        for entry in os.scandir(path):
            child = f"{key}/{entry.name}"
            if child.split("repo/", 1)[-1] not in UNCOMPARED:
                _scan(entry.path, child, state)


def assert_unchanged(before: dict, after: dict) -> None:
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    assert not (added or removed or changed), (
        f"filesystem was modified: added={added[:10]} removed={removed[:10]} changed={changed[:10]}")


def one_line_error(result: Result, *names: str) -> str:
    """RESULT is a failure reported as exactly one clean line naming every one of NAMES."""
    text = result.out + result.err
    lines = [line for line in re.split(r"\r\n|\r|\n", text) if line.strip()]
    assert result.code != 0, f"expected failure, got exit 0: {text!r}"
    assert "Traceback" not in text, text
    assert len(lines) == 1, f"expected one line of output, got {len(lines)}: {text!r}"
    line = lines[0]
    assert line.startswith("error:"), line
    assert "unexpected error" not in line, f"an internal crash, not a clear error: {line!r}"
    assert "{" not in line and "}" not in line, f"stray brace in message: {line!r}"
    assert not CONTROL.search(line), f"raw control character in message: {line!r}"
    for name in names:
        assert name in line, f"message does not name {name!r}: {line!r}"
    return line


def put_object(repo: TmpRepo, data: bytes, oid: str | None = None) -> str:
    """Write DATA into the cache as objects/<2>/<62> under OID (default: its real sha256)."""
    oid = oid or hashlib.sha256(data).hexdigest()
    path = repo.root / ".runicorn" / "cache" / "objects" / oid[:2] / oid[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, 0o444)
    return oid


def object_path(repo: TmpRepo, oid: str) -> Path:
    return repo.root / ".runicorn" / "cache" / "objects" / oid[:2] / oid[2:]


def pointer_text(path="X", kind="file", oid=GOOD_OID, size=len(GOOD), files=None, runicorn=1, hash="sha256") -> str:
    lines = [f"runicorn: {runicorn}", f"path: {path}", f"kind: {kind}", f"hash: {hash}", f"oid: {oid}", f"size: {size}"]
    if files is not None:
        lines.append(f"files: {files}")
    return "\n".join(lines) + "\n"


def without(key: str) -> str:
    return "".join(line + "\n" for line in pointer_text().splitlines() if not line.startswith(key + ":"))


# --------------------------------------------------------------------------- the armed repository
_TEMPLATE: dict[str, Path] = {}


def _template(factory) -> Path:
    if "root" not in _TEMPLATE:
        root = factory.mktemp("template") / "repo"
        root.mkdir()
        git(root, "init", "-q", "-b", "main")
        t = TmpRepo(root)
        assert t.rn("init").code == 0
        t.gen({"good.bin": GOOD, "gooddir": {"a.csv": "1,2\n", "sub": {"b.txt": "b\n"}}})
        result = t.rn("add", "good.bin", "gooddir")
        assert result.code == 0, result.err
        t.commit("track good data")
        assert t.rn("checkout").code == 0  # lock files exist from now on
        # Keep the copies small (faster tests): no empty cache fan-out folders, no sample git hooks.
        for fan in (root / ".runicorn" / "cache" / "objects").iterdir():
            if not any(fan.iterdir()):
                fan.rmdir()
        for sample in (root / ".git" / "hooks").glob("*.sample"):
            sample.unlink()
        _TEMPLATE["root"] = root
    return _TEMPLATE["root"]


@pytest.fixture
def repo(tmp_path, tmp_path_factory) -> TmpRepo:
    root = tmp_path / "repo"
    shutil.copytree(_template(tmp_path_factory), root, symlinks=True)
    r = TmpRepo(root)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim.txt").write_bytes(b"outside the repository\n")
    return r


@pytest.fixture
def armed(repo) -> TmpRepo:
    (repo.root / "good.bin").unlink()
    (repo.root / "gooddir" / "a.csv").unlink()
    put_object(repo, ORPHAN)
    return repo


def run_unchanged(repo: TmpRepo, tmp_path: Path, *args: str) -> Result:
    """Run the CLI and assert it wrote nothing under tmp_path or HOME."""
    home = Path(os.environ["HOME"])
    before = snapshot(tmp_path, home)
    result = repo.rn(*args)
    assert_unchanged(before, snapshot(tmp_path, home))
    return result


# --------------------------------------------------------------------------- hostile pointer files
LONG = "x" * 5000
BOMB = "".join(
    [f"l0: &l0 [{', '.join(['lol'] * 9)}]\n"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)]
) + pointer_text()

POINTERS: dict[str, str | bytes] = {
    # path: traversal, absolute, drive letters, backslashes, control characters, reserved folders
    "path-dotdot": pointer_text(path=".."),
    "path-dot": pointer_text(path="."),
    "path-dotdot-x": pointer_text(path="../X"),
    "path-deep-dotdot": pointer_text(path="../../../../outside/victim.txt"),
    "path-absolute": pointer_text(path="/etc/passwd"),
    "path-absolute-x": pointer_text(path="/X"),
    "path-home": pointer_text(path="~/.ssh/authorized_keys"),
    "path-drive": pointer_text(path="C:foo"),
    "path-drive-bare": pointer_text(path="'C:'"),
    "path-drive-backslash": pointer_text(path="'C:\\X'"),
    "path-backslash": pointer_text(path="'a\\b'"),
    "path-backslash-dotdot": pointer_text(path="'..\\..\\X'"),
    "path-slash": pointer_text(path="sub/X"),
    "path-nul": pointer_text(path='"X\\0"'),
    "path-newline": pointer_text(path='"X\\nY"'),
    "path-escape": pointer_text(path='"\\e[2J"'),
    "path-del": pointer_text(path='"X\\x7f"'),
    "path-c1": pointer_text(path='"X\\x9b"'),
    "path-git": pointer_text(path=".git"),
    "path-GIT": pointer_text(path=".GIT"),
    "path-git-dot": pointer_text(path=".git."),
    "path-git-space": pointer_text(path="'.git '"),
    "path-runicorn": pointer_text(path=".runicorn"),
    "path-Runicorn": pointer_text(path=".Runicorn"),
    "path-empty": pointer_text(path="''"),
    "path-null": pointer_text(path="null"),
    "path-int": pointer_text(path="123"),
    "path-list": pointer_text(path="[X]"),
    "path-too-long": pointer_text(path=LONG),
    "path-mismatch": pointer_text(path="Y"),
    "path-mismatch-good": pointer_text(path="good.bin"),
    "path-missing": without("path"),
    # oid
    "oid-short": pointer_text(oid=GOOD_OID[:63]),
    "oid-long": pointer_text(oid=GOOD_OID + "0"),
    "oid-non-hex": pointer_text(oid="g" * 64),
    "oid-traversal": pointer_text(oid=("../" * 22)[:64]),
    "oid-digits": pointer_text(oid="1" * 64),
    "oid-empty": pointer_text(oid="''"),
    "oid-missing": without("oid"),
    "oid-prefixed": pointer_text(oid="sha256:" + GOOD_OID),
    # size
    "size-negative": pointer_text(size=-1),
    "size-absurd": pointer_text(size=2**62 + 1),
    "size-huge": pointer_text(size=10**30),
    "size-float": pointer_text(size="1.5"),
    "size-inf": pointer_text(size=".inf"),
    "size-string": pointer_text(size="'10'"),
    "size-bool": pointer_text(size="true"),
    "size-null": pointer_text(size="null"),
    "size-missing": without("size"),
    # format version
    "version-2": pointer_text(runicorn=2),
    "version-0": pointer_text(runicorn=0),
    "version-string": pointer_text(runicorn="'1'"),
    "version-float": pointer_text(runicorn="1.0"),
    "version-bool": pointer_text(runicorn="true"),
    "version-missing": without("runicorn"),
    # hash algorithm
    "hash-md5": pointer_text(hash="md5"),
    "hash-sha1": pointer_text(hash="sha1"),
    "hash-sha512": pointer_text(hash="sha512"),
    "hash-upper": pointer_text(hash="SHA256"),
    "hash-missing": without("hash"),
    # kind / files
    "kind-symlink": pointer_text(kind="symlink"),
    "kind-missing": without("kind"),
    "dir-files-negative": pointer_text(kind="dir", files=-1),
    "dir-files-missing": pointer_text(kind="dir"),
    # not YAML
    "yaml-unclosed": "runicorn: 1\npath: [X\n",
    "yaml-tab": "runicorn: 1\n\tpath: X\n",
    "yaml-bad-indent": "runicorn: 1\n  path: X\n kind: file\n",
    "yaml-invalid-utf8": b"runicorn: 1\npath: \x80\x81\xfe\n",
    "yaml-binary": bytes(range(256)),
    # not a mapping
    "not-mapping-list": "- runicorn\n- X\n",
    "not-mapping-string": "just some text\n",
    "not-mapping-int": "42\n",
    "not-mapping-empty": "",
    "not-mapping-null": "null\n",
    "not-mapping-multidoc": pointer_text() + "---\n" + pointer_text(),
    # YAML bombs, tags, nesting, size
    "yaml-bomb": BOMB,
    "yaml-anchor-alias": "runicorn: 1\npath: &p X\nkind: file\nhash: sha256\noid: " + GOOD_OID + "\nsize: 10\nalias: *p\n",
    "yaml-merge-key": "base: &b\n  kind: file\n<<: *b\n" + without("kind"),
    "yaml-deep-nesting": "runicorn: 1\npath: " + "[" * 20000 + "]" * 20000 + "\n",
    "python-object-apply": "!!python/object/apply:os.system ['touch PWNED']\n",
    "python-object-field": pointer_text(path="!!python/object/apply:os.getcwd []"),
    "python-name": pointer_text(size="!!python/name:os.system"),
    "unknown-tag": pointer_text(path="!custom X"),
    "binary-tag": pointer_text(path="!!binary WA=="),
    "too-large": pointer_text() + "# " + "x" * (64 << 10) + "\n",
    "too-large-valid-yaml": pointer_text() + "comment: " + "y" * (70 << 10) + "\n",
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(POINTERS))
def test_hostile_pointer_is_refused_and_nothing_is_written(armed, tmp_path, case, command):
    data = POINTERS[case]
    (armed.root / "X.rn").write_bytes(data.encode() if isinstance(data, str) else data)
    result = run_unchanged(armed, tmp_path, *COMMANDS[command])
    one_line_error(result, "X.rn")
    assert not (tmp_path / "repo" / "PWNED").exists()


def test_hostile_pointer_in_a_subfolder_is_named_with_its_folder(armed, tmp_path):
    (armed.root / "models").mkdir()
    (armed.root / "models" / "m.bin.rn").write_text(pointer_text(path="../../m.bin"))
    for args in COMMANDS.values():
        one_line_error(run_unchanged(armed, tmp_path, *args), "models/m.bin.rn")


def test_valid_pointer_control_case_is_accepted(armed, tmp_path):
    """The corpus' template is itself valid: the failures above come from the one hostile field."""
    (armed.root / "X.rn").write_text(pointer_text())
    for name in ("status", "ls", "verify"):
        assert armed.rn(*COMMANDS[name]).code == 0, name
    result = armed.rn("checkout")
    assert result.code == 0, result.err
    assert (armed.root / "X").read_bytes() == GOOD


# Pointer files whose own location or name is hostile (the `path` field matches the file name).
LOCATIONS = {
    "under-.GIT": (".GIT/post-checkout.rn", "post-checkout", "post-checkout.rn"),
    "under-.Git-hooks": (".Git/hooks/pre-commit.rn", "pre-commit", "pre-commit.rn"),
    "under-.git.": (".git./config.rn", "config", "config.rn"),
    "under-.Runicorn": (".Runicorn/cache.rn", "cache", "cache.rn"),
    "under-.RUNICORN-tmp": (".RUNICORN/tmp/x.rn", "x", "x.rn"),
    "name-with-newline": ("evil\nname.rn", '"evil\\nname"', "name.rn"),
    "name-with-escape": ("evil\x1b[2J.rn", '"evil\\e[2J"', "evil"),
    "name-with-control": ("evil\x01.rn", '"evil\\x01"', "evil"),
    "name-with-c1-control": ("evil\x9b.rn", '"evil\\x9b"', "evil"),
    "name-with-backslash": ("ev\\il.rn", "'ev\\il'", ".rn"),
    "name-drive": ("C:evil.rn", "'C:evil'", "evil.rn"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(LOCATIONS))
def test_pointer_at_hostile_location_is_refused(armed, tmp_path, case, command):
    where, path_field, named = LOCATIONS[case]
    file = armed.root / where
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(pointer_text(path=path_field))
    result = run_unchanged(armed, tmp_path, *COMMANDS[command])
    one_line_error(result, named)


def test_hostile_pointer_committed_on_a_branch_stops_gc_and_ls_rev(armed, tmp_path):
    armed.git("checkout", "-q", "-b", "side")
    (armed.root / "X.rn").write_text(pointer_text(path=".."))
    armed.git("add", "X.rn")
    armed.git("commit", "-q", "-m", "hostile pointer")
    armed.git("checkout", "-q", "main")
    assert not (armed.root / "X.rn").exists()
    one_line_error(run_unchanged(armed, tmp_path, "gc", "--yes"), "X.rn")
    assert object_path(armed, ORPHAN_OID).exists()
    one_line_error(run_unchanged(armed, tmp_path, "ls", "--rev", "side"), "X.rn")
    one_line_error(run_unchanged(armed, tmp_path, "diff", "main", "side"), "X.rn")


# --------------------------------------------------------------------------- hostile directory manifests
def row(name, kind="file", oid=GOOD_OID, size=len(GOOD), **extra):
    r = {"kind": kind, "name": name, "oid": oid, "size": size}
    if kind == "file":
        r["exec"] = extra.pop("exec", False)
    else:
        r["files"] = extra.pop("files", 1)
    r.update(extra)
    return r


def manifest(*rows, version=1) -> bytes:
    doc = {"entries": list(rows), "runicorn-tree": version}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


VALID_SUB = manifest(row("inner.txt"))
VALID_SUB_OID = hashlib.sha256(VALID_SUB).hexdigest()

MANIFESTS: dict[str, bytes] = {
    "name-dotdot": manifest(row("..")),
    "name-dot": manifest(row(".")),
    "name-slash": manifest(row("a/b")),
    "name-traversal": manifest(row("../../outside/victim.txt")),
    "name-absolute": manifest(row("/etc/passwd")),
    "name-absolute-bare": manifest(row("/x")),
    "name-drive": manifest(row("C:x")),
    "name-backslash": manifest(row("..\\..\\x")),
    "name-git": manifest(row(".git")),
    "name-GIT-dir": manifest(row(".GIT", kind="dir", oid=VALID_SUB_OID, files=1)),
    "name-runicorn": manifest(row(".Runicorn")),
    "name-nul": manifest(row("a\x00b")),
    "name-newline": manifest(row("a\nb")),
    "name-escape": manifest(row("\x1b[2J")),
    "name-empty": manifest(row("")),
    "name-not-string": manifest(row(5)),
    "name-missing": manifest({"kind": "file", "oid": GOOD_OID, "size": 10, "exec": False}),
    "duplicate-names": manifest(row("a"), row("a")),
    "duplicate-file-and-dir": manifest(row("a"), row("a", kind="dir", oid=VALID_SUB_OID)),
    "oid-short": manifest(row("a", oid=GOOD_OID[:40])),
    "oid-non-hex": manifest(row("a", oid="z" * 64)),
    "oid-traversal": manifest(row("a", oid=("../" * 22)[:64])),
    "oid-null": manifest(row("a", oid=None)),
    "size-negative": manifest(row("a", size=-1)),
    "size-absurd": manifest(row("a", size=2**63)),
    "size-float": manifest(row("a", size=1.5)),
    "size-string": manifest(row("a", size="10")),
    "size-bool": manifest(row("a", size=True)),
    "exec-not-bool": manifest(row("a", exec="yes")),
    "kind-symlink": manifest(row("a", kind="symlink")),
    "dir-files-negative": manifest(row("d", kind="dir", oid=VALID_SUB_OID, files=-1)),
    "entry-not-mapping": manifest(1),
    "entries-not-list": b'{"entries":"a","runicorn-tree":1}',
    "unknown-version": manifest(row("a"), version=2),
    "version-missing": b'{"entries":[]}',
    "top-level-list": b"[]",
    "not-json": b"this is not JSON\n",
    "not-utf8": b"\xff\xfe\x80garbage",
    "empty": b"",
    "deep-nesting": b"[" * 100000 + b"]" * 100000,
}


def place_dir_pointer(repo: TmpRepo, oid: str, name: str = "hostile") -> None:
    (repo.root / f"{name}.rn").write_text(pointer_text(path=name, kind="dir", oid=oid, size=10, files=1))


@pytest.mark.parametrize("command", ["checkout", "ls", "verify", "gc"])
@pytest.mark.parametrize("case", list(MANIFESTS))
def test_hostile_manifest_is_refused_and_nothing_is_written(armed, tmp_path, case, command):
    put_object(armed, VALID_SUB)
    oid = put_object(armed, MANIFESTS[case])
    place_dir_pointer(armed, oid)
    result = run_unchanged(armed, tmp_path, *COMMANDS[command])
    one_line_error(result, oid[:12])
    assert not (armed.root / "hostile").exists()


@pytest.mark.parametrize("case", ["name-dotdot", "name-traversal", "name-git", "duplicate-names", "oid-non-hex",
                                  "size-negative", "not-json", "deep-nesting"])
def test_hostile_sub_manifest_leaves_no_partial_data(armed, tmp_path, case):
    """A valid root manifest whose sub-folder manifest is hostile: no file of the root is written either."""
    sub = put_object(armed, MANIFESTS[case])
    root = put_object(armed, manifest(row("a-first.txt"), row("sub", kind="dir", oid=sub), row("z-last.txt")))
    place_dir_pointer(armed, root)
    for args in (("checkout",), ("checkout", "--force"), ("checkout", "hostile")):
        one_line_error(run_unchanged(armed, tmp_path, *args), sub[:12])
    assert not (armed.root / "hostile").exists()


def test_manifest_whose_content_does_not_match_its_name_is_refused(armed, tmp_path):
    good_manifest = manifest(row("a.txt"))
    wrong_name = hashlib.sha256(b"something else entirely").hexdigest()
    put_object(armed, good_manifest, oid=wrong_name)
    place_dir_pointer(armed, wrong_name)
    for args in (("checkout",), ("checkout", "--force"), ("ls",), ("gc", "--yes")):
        one_line_error(run_unchanged(armed, tmp_path, *args), wrong_name[:12])
    assert not (armed.root / "hostile").exists()
    result = armed.rn("verify")
    assert result.code == 5, result.out + result.err


def test_non_canonical_manifest_children_survive_gc(armed, tmp_path):
    """A manifest not in the canonical byte encoding (e.g. pulled from a foreign tool) must not make gc
    treat the objects it lists as garbage while checkout/ls still rely on it."""
    child = put_object(armed, b"only reachable through the non-canonical manifest\n")
    data = json.dumps({"runicorn-tree": 1, "entries": [row("c.txt", oid=child, size=51)]}, indent=1).encode()
    oid = put_object(armed, data)
    place_dir_pointer(armed, oid)
    listed = armed.rn("ls")
    accepted = listed.code == 0
    result = armed.rn("gc", "--yes")
    if accepted:
        assert child[:12] in listed.out
        assert object_path(armed, child).exists(), (
            f"gc deleted an object that `ls` lists as tracked data: {result.out}{result.err}")
    else:
        one_line_error(listed, oid[:12])
        assert result.code != 0 and object_path(armed, child).exists()


# --------------------------------------------------------------------------- config
CONFIG_COMMANDS = {
    "status": ("status",),
    "ls": ("ls",),
    "checkout": ("checkout",),
    "verify": ("verify",),
    "gc": ("gc", "--yes"),
    "add": ("add", "new.bin"),
    "commit": ("commit",),
    "diff": ("diff",),
    "log": ("log", "good.bin"),
    "get": ("get", "good.bin", "-o", "../got.bin"),
    "unprotect": ("unprotect", "gooddir"),
    "config-list": ("config", "list"),
    "config-get": ("config", "get", "core.jobs"),
    "config-set": ("config", "set", "core.jobs", "2"),
    "config-set-local": ("config", "set", "--scope", "local", "core.jobs", "2"),
    "init": ("init",),
}

CONFIG_FILES = {
    "project": ".runicorn.yaml",
    "local": ".runicorn/config.local.yaml",
}


@pytest.mark.parametrize("command", list(CONFIG_COMMANDS))
@pytest.mark.parametrize("where", list(CONFIG_FILES))
def test_unknown_config_key_fails_every_command_naming_it(armed, tmp_path, where, command):
    if command.startswith("config-set") and command != {"project": "config-set", "local": "config-set-local"}[where]:
        pytest.skip("`config set` into another file may be used to repair the broken one")
    (armed.root / "new.bin").write_bytes(b"new")
    (armed.root / CONFIG_FILES[where]).write_text("core:\n  jobs: 2\n  frobnicate: yes\n")
    one_line_error(run_unchanged(armed, tmp_path, *CONFIG_COMMANDS[command]), "core.frobnicate")


def test_unknown_top_level_and_user_config_keys_are_named(armed, tmp_path):
    (armed.root / ".runicorn.yaml").write_text("colour: blue\n")
    one_line_error(run_unchanged(armed, tmp_path, "status"), "colour")
    (armed.root / ".runicorn.yaml").write_text("")
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "runicorn" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("cache:\n  linkk: copy\n")
    one_line_error(run_unchanged(armed, tmp_path, "status"), "cache.linkk")


def test_doctor_reports_an_unknown_config_key(armed, tmp_path):
    (armed.root / ".runicorn.yaml").write_text("core:\n  frobnicate: 1\n")
    result = armed.rn("doctor")
    assert "core.frobnicate" in result.out + result.err


BAD_CONFIGS = {
    "not-yaml-unclosed": ("core: [unclosed\n", ".runicorn.yaml"),
    "not-yaml-tab": ("core:\n\tjobs: 2\n", ".runicorn.yaml"),
    "not-yaml-binary": (b"\x80\x81\xfe\xff", ".runicorn.yaml"),
    "not-mapping": ("- core\n- cache\n", ".runicorn.yaml"),
    "scalar": ("hello\n", ".runicorn.yaml"),
    "group-not-mapping": ("core: 5\n", "core"),
    "python-tag": ("core:\n  remote: !!python/object/apply:os.system ['touch PWNED']\n", ".runicorn.yaml"),
    "bad-int": ("core:\n  jobs: many\n", "core.jobs"),
    "bad-bool": ("core:\n  memo: perhaps\n", "core.memo"),
    "bad-link": ("cache:\n  link: [teleport]\n", "cache.link"),
    "bad-duration": ("gc:\n  grace_period: forever\n", "gc.grace_period"),
    "bad-remote-option": ("remote:\n  origin:\n    colour: red\n", "remote.origin.colour"),
}


@pytest.mark.parametrize("command", ["status", "checkout", "add", "gc"])
@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_gives_a_clear_error(armed, tmp_path, case, command):
    data, named = BAD_CONFIGS[case]
    (armed.root / "new.bin").write_bytes(b"new")
    path = armed.root / ".runicorn.yaml"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    args = CONFIG_COMMANDS[command]
    one_line_error(run_unchanged(armed, tmp_path, *args), named)
    assert not (armed.root / "PWNED").exists()


def test_config_yaml_bomb_gives_a_short_one_line_error(armed, tmp_path):
    """Billion laughs in a config value: refused, and the expanded value never ends up in the message."""
    (armed.root / ".runicorn.yaml").write_text("core:\n  remote: " + _bomb_flow(6) + "\n")
    result = run_unchanged(armed, tmp_path, "status")
    line = one_line_error(result, ".runicorn.yaml", "aliases")
    assert len(line) < 2000, f"error message is {len(line):,} characters long"


def _bomb_flow(levels: int) -> str:
    """A flow-style YAML value whose aliases expand to 10**LEVELS leaves (billion laughs)."""
    inner = "&b0 [" + ", ".join(["lol"] * 10) + "]"
    for i in range(1, levels):
        inner = f"&b{i} [{inner}, " + ", ".join([f"*b{i - 1}"] * 9) + "]"
    return inner


ENV_VALUES = {
    "RUNICORN_CORE_JOBS": "lots",
    "RUNICORN_CORE_MEMO": "perhaps",
    "RUNICORN_CORE_LOCK_TIMEOUT": "soon",
    "RUNICORN_CORE_AUTOSTAGE": "2",
    "RUNICORN_CACHE_LINK": "teleport",
    "RUNICORN_GC_GRACE_PERIOD": "forever",
    "RUNICORN_VIEWER_PORT": "http",
}


@pytest.mark.parametrize("command", ["status", "checkout", "add", "gc", "config-list"])
@pytest.mark.parametrize("var", list(ENV_VALUES))
def test_bad_environment_value_names_the_variable(armed, tmp_path, monkeypatch, var, command):
    (armed.root / "new.bin").write_bytes(b"new")
    monkeypatch.setenv(var, ENV_VALUES[var])
    one_line_error(run_unchanged(armed, tmp_path, *CONFIG_COMMANDS[command]), var)


def test_bad_environment_value_in_a_real_process(armed, tmp_path):
    result = armed.rn_proc("status", env={"RUNICORN_CORE_JOBS": "lots"})
    one_line_error(Result(result.returncode, result.stdout, result.stderr), "RUNICORN_CORE_JOBS")


# --------------------------------------------------------------------------- symlinks
@pytest.fixture
def outside(tmp_path) -> Path:
    """Secrets outside the repository: a file and a folder."""
    out = tmp_path / "secrets"
    (out / "dir").mkdir(parents=True)
    (out / "secret.txt").write_bytes(SECRET)
    (out / "dir" / "key.pem").write_bytes(SECRET)
    return out


def cache_contains(repo: TmpRepo, needle: bytes) -> list[str]:
    hits = []
    for path in (repo.root / ".runicorn").rglob("*"):
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
            hits.append(str(path))
    return hits


def test_symlinks_inside_an_added_folder_are_not_followed(repo, tmp_path, outside):
    repo.gen({"data": {"real.txt": "real\n", "sub": {"deep.txt": "deep\n"}}})
    os.symlink(outside / "secret.txt", repo.root / "data" / "leak.txt")
    os.symlink(outside / "dir", repo.root / "data" / "leakdir")
    os.symlink("../../../secrets/secret.txt", repo.root / "data" / "sub" / "rel-leak.txt")
    before = snapshot(outside)
    result = repo.rn("add", "data")
    assert result.code == 0, result.err
    assert_unchanged(before, snapshot(outside))
    assert cache_contains(repo, b"TOP-SECRET") == []
    text = result.out + result.err
    for name in ("leak.txt", "leakdir", "rel-leak.txt"):
        assert re.search(rf"(?i)(warn|skip).*{re.escape(name)}", text), f"no warning that {name} was skipped: {text!r}"
    listed = repo.rn("ls", "--json")
    paths = {r["path"] for r in json.loads(listed.out)}
    assert "data/real.txt" in paths and "data/sub/deep.txt" in paths
    assert not any("leak" in p for p in paths), paths
    # the symlinks themselves are left alone in the workspace, still pointing where they did
    assert os.readlink(repo.root / "data" / "leak.txt") == str(outside / "secret.txt")
    assert (outside / "secret.txt").read_bytes() == SECRET
    # ... and checkout / status / gc never follow them either
    before = snapshot(outside)
    for args in (("status",), ("checkout", "--force"), ("gc", "--yes"), ("verify",)):
        repo.rn(*args)
    assert_unchanged(before, snapshot(outside))
    assert cache_contains(repo, b"TOP-SECRET") == []


@pytest.mark.parametrize("target", ["outside-file", "outside-dir", "inside-file", "dangling"])
def test_add_of_a_symlink_is_refused(repo, tmp_path, outside, target):
    repo.gen({"inside.txt": "inside\n"})
    dest = {"outside-file": outside / "secret.txt", "outside-dir": outside / "dir",
            "inside-file": repo.root / "inside.txt", "dangling": tmp_path / "nowhere"}[target]
    os.symlink(dest, repo.root / "link")
    one_line_error(run_unchanged(repo, tmp_path, "add", "link"), "link")
    assert cache_contains(repo, b"TOP-SECRET") == []


@pytest.mark.parametrize("how", ["dotdot", "absolute", "dotdot-inside", "through-symlinked-folder",
                                 "absolute-system", "home"])
def test_add_of_a_path_outside_the_repo_is_refused(repo, tmp_path, outside, how):
    os.symlink(outside, repo.root / "linkdir")
    arg = {"dotdot": "../secrets/secret.txt", "absolute": str(outside / "secret.txt"),
           "dotdot-inside": "gooddir/../../secrets/secret.txt", "through-symlinked-folder": "linkdir/secret.txt",
           "absolute-system": "/etc/hostname", "home": os.environ["HOME"]}[how]
    if how == "absolute-system" and not Path(arg).exists():
        arg = "/etc/passwd"
    result = run_unchanged(repo, tmp_path, "add", arg)
    one_line_error(result, arg)
    assert cache_contains(repo, b"TOP-SECRET") == []


def test_add_outside_the_repo_refused_for_a_folder_too(repo, tmp_path, outside):
    one_line_error(run_unchanged(repo, tmp_path, "add", str(outside)), str(outside))
    one_line_error(run_unchanged(repo, tmp_path, "add", "../secrets"), "../secrets")


@pytest.fixture
def tracked_data(repo) -> TmpRepo:
    repo.gen({"aaa.bin": b"first in checkout order\n", "data": {"a.txt": "a\n", "sub": {"b.txt": "b\n", "c.txt": "c\n"}}})
    result = repo.rn("add", "aaa.bin", "data")
    assert result.code == 0, result.err
    repo.commit("track data")
    (repo.root / "aaa.bin").unlink()  # a checkout that goes ahead restores it: a visible write
    return repo


def _check_symlink_checkout(repo: TmpRepo, tmp_path: Path, victim: Path, link: str, force: bool) -> None:
    before_all, before_victim = snapshot(tmp_path), snapshot(victim)
    result = repo.rn("checkout", *(["--force"] if force else []))
    assert_unchanged(before_victim, snapshot(victim))
    if result.code == 0:
        assert not (repo.root / link).is_symlink()
        assert (repo.root / "data" / "sub" / "b.txt").read_text() == "b\n"
        assert (repo.root / "aaa.bin").is_file()
    else:  # a refusal is a failed command: it must not have modified the workspace either
        one_line_error(result, link)
        assert_unchanged(before_all, snapshot(tmp_path))


@pytest.fixture
def victim(tmp_path) -> Path:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine\n")
    return victim


@pytest.mark.parametrize("force", [False, True])
def test_checkout_never_writes_through_a_symlinked_tracked_folder(tracked_data, tmp_path, victim, force):
    shutil.rmtree(tracked_data.root / "data")
    os.symlink(victim, tracked_data.root / "data")
    _check_symlink_checkout(tracked_data, tmp_path, victim, "data", force)


@pytest.mark.parametrize("force", [False, True])
def test_checkout_never_writes_through_a_symlinked_subfolder(tracked_data, tmp_path, victim, force):
    shutil.rmtree(tracked_data.root / "data" / "sub")
    os.symlink(victim, tracked_data.root / "data" / "sub")
    _check_symlink_checkout(tracked_data, tmp_path, victim, "data/sub", force)
    assert not (victim / "b.txt").exists() and not (victim / "c.txt").exists()


def test_checkout_replaces_a_symlink_at_a_tracked_file_without_writing_through_it(repo, tmp_path):
    repo.gen({"models": {"m.bin": b"weights"}})
    assert repo.rn("add", "models/m.bin").code == 0
    repo.commit("track model")
    victim = tmp_path / "victim"
    victim.mkdir()
    # the tracked file itself is replaced by a symlink to a (not yet existing) file outside
    (repo.root / "models" / "m.bin").unlink()
    os.symlink(victim / "m.bin", repo.root / "models" / "m.bin")
    before = snapshot(victim)
    result = repo.rn("checkout", "--force")
    assert_unchanged(before, snapshot(victim))
    assert not (victim / "m.bin").exists()
    if result.code == 0:
        assert not (repo.root / "models" / "m.bin").is_symlink()
        assert (repo.root / "models" / "m.bin").read_bytes() == b"weights"


def test_checkout_of_a_path_under_a_symlinked_parent_is_refused(repo, tmp_path):
    repo.gen({"models": {"m.bin": b"weights"}})
    assert repo.rn("add", "models/m.bin").code == 0
    repo.commit("track model")
    victim = tmp_path / "victim"
    victim.mkdir()
    shutil.copy(repo.root / "models" / "m.bin.rn", victim / "m.bin.rn")
    shutil.rmtree(repo.root / "models")
    os.symlink(victim, repo.root / "models")
    for args in (("checkout", "models/m.bin"), ("checkout", "--force", "models/m.bin"), ("add", "models/m.bin")):
        one_line_error(run_unchanged(repo, tmp_path, *args), "models")
    assert sorted(p.name for p in victim.iterdir()) == ["m.bin.rn"]
