"""What a run records about where it ran: git state (with the full diff), data state, environment.

Read-only towards the workspace and git: nothing here writes to the work tree or the git index.
Each capture is best effort: a piece that cannot be read is left out and named in `problems`.
The git state is read with the `git` command line (bytes in, bytes out: diffs of any encoding).
"""
from __future__ import annotations

import getpass
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from runicorn.storage.git import git_output

# Untracked files go into the diff up to these sizes; larger ones are listed, not stored.
UNTRACKED_FILE_CAP = 1 << 20
UNTRACKED_TOTAL_CAP = 8 << 20
DIFF_CAP = 64 << 20
UNTRACKED_LISTED_CAP = 1000  # files named in the run document; beyond that only counted

_CREDENTIALS = re.compile(r"^(\w+://)[^/@]*@")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").strip()


def strip_credentials(url: str) -> str:
    """https://user:token@host/x → https://host/x: a run document never carries a secret."""
    return _CREDENTIALS.sub(r"\1", url)


def git_state(root: Path) -> tuple[dict, bytes]:
    """(commit, branch, remote_url, dirty, submodules …), and the diff bytes (tracked + untracked)."""
    info: dict = {"commit": None, "branch": None, "remote_url": None, "dirty": False, "submodules": []}
    head = git_output(root, "rev-parse", "--verify", "-q", "HEAD", check=False).strip()
    info["commit"] = head.decode() if head else None
    branch = _text(git_output(root, "symbolic-ref", "-q", "--short", "HEAD", check=False))
    info["branch"] = branch or None
    remotes = _text(git_output(root, "remote", check=False)).split()
    if remotes:
        name = "origin" if "origin" in remotes else remotes[0]
        url = _text(git_output(root, "config", "--get", f"remote.{name}.url", check=False))
        info["remote_url"] = strip_credentials(url) if url else None
    tracked = _tracked_diff(root, bool(head))
    untracked, listed = _untracked_patch(root)
    info["untracked"] = listed[:UNTRACKED_LISTED_CAP]
    if len(listed) > UNTRACKED_LISTED_CAP:
        info["untracked_not_listed"] = len(listed) - UNTRACKED_LISTED_CAP
    info["dirty"] = bool(tracked) or bool(listed)
    info["submodules"] = _submodules(root)
    diff = tracked + untracked
    if len(diff) > DIFF_CAP:
        info["diff_truncated"] = len(diff)
        diff = diff[:DIFF_CAP]
    return info, diff


def _tracked_diff(root: Path, has_head: bool) -> bytes:
    if has_head:
        return git_output(root, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--ignore-submodules=dirty")
    return git_output(root, "diff", "--cached", "--binary", "--no-color", "--no-ext-diff")


def _untracked_patch(root: Path) -> tuple[bytes, list[dict]]:
    """A `git apply`-able patch creating every untracked, not-ignored file within the caps."""
    names = [n for n in git_output(root, "ls-files", "--others", "--exclude-standard", "-z").decode(
        "utf-8", errors="surrogateescape").split("\0") if n]
    parts: list[bytes] = []
    listed: list[dict] = []
    total = 0
    for name in sorted(names):
        path = root / name
        try:
            size = path.stat().st_size if not path.is_symlink() else 0
            if path.is_symlink() or not path.is_file():
                listed.append({"path": name, "size": size, "stored": False, "reason": "not a regular file"})
                continue
            if size > UNTRACKED_FILE_CAP or total + size > UNTRACKED_TOTAL_CAP:
                listed.append({"path": name, "size": size, "stored": False, "reason": "over the size cap"})
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"\0" in data[:8000]:
            listed.append({"path": name, "size": size, "stored": False, "reason": "binary"})
            continue
        total += size
        listed.append({"path": name, "size": size, "stored": True})
        parts.append(_new_file_patch(name, data))
    return b"".join(parts), listed


def _new_file_patch(name: str, data: bytes) -> bytes:
    bname = name.encode("utf-8", errors="surrogateescape")
    lines = data.splitlines(keepends=True)
    head = b"diff --git a/%s b/%s\nnew file mode 100644\n" % (bname, bname)
    if not lines:
        return head
    body = [b"--- /dev/null\n", b"+++ b/%s\n" % bname, b"@@ -0,0 +1,%d @@\n" % len(lines)]
    for line in lines:
        body.append(b"+" + line)
    if not lines[-1].endswith(b"\n"):
        body.append(b"\n\\ No newline at end of file\n")
    return head + b"".join(body)


def _submodules(root: Path) -> list[dict]:
    if not (root / ".gitmodules").is_file():
        return []
    out = []
    status = git_output(root, "submodule", "status", "--recursive", check=False).decode("utf-8", errors="replace")
    for line in status.splitlines():  # not stripped: the first column is the state
        parts = line[1:].split()
        if len(parts) >= 2:
            out.append({"path": parts[1], "commit": parts[0], "state": {" ": "clean", "+": "changed",
                                                                       "-": "not initialised",
                                                                       "U": "conflict"}.get(line[0], line[0])})
    return out


def environment(argv: list[str] | None = None) -> dict:
    env = {
        "python": sys.version.split()[0], "python_executable": sys.executable,
        "platform": platform.platform(), "hostname": socket.gethostname(), "user": _user(),
        "argv": list(sys.argv if argv is None else argv), "cwd": os.getcwd(), "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(), "memory_bytes": _memory(), "packages": _packages(),
    }
    gpu = _gpus()
    if gpu:
        env["gpu"] = gpu
    ci = ci_details()
    if ci:
        env["ci"] = ci
    return env


def interpreter() -> dict:
    """What this Python is: version, executable, packages, and the GPUs torch sees when the script
    already imported it. A script that joins a `runicorn run` records these over the wrapper's."""
    found = {"python": sys.version.split()[0], "python_executable": sys.executable, "packages": _packages()}
    gpu = _torch_gpus()
    if gpu:
        found["gpu"] = gpu
    return found


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _packages() -> dict[str, str]:
    """Installed distributions → version. The name and version come from the `NAME-VERSION.dist-info`
    folder name when there is one (parsing ~300 METADATA files costs ~0.2 s; the folder name, nothing)."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        folder = getattr(dist, "_path", None)
        stem = getattr(folder, "name", "")
        if stem.endswith(".dist-info") and stem.count("-") == 1:
            name, version = stem[: -len(".dist-info")].split("-")
        else:
            meta = dist.metadata
            name, version = (meta.get("Name") if meta else None), dist.version
        if name:
            found.setdefault(name, version)
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def _gpus() -> list[dict]:
    return _smi_gpus() or _torch_gpus()


def _smi_gpus() -> list[dict]:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        done = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10, check=False)
        rows = [[c.strip() for c in line.split(",")] for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or not rows:
            return []
        cuda = _smi_cuda(smi)
    except (OSError, subprocess.SubprocessError):
        return []
    return [{"name": r[0], "driver": r[1] if len(r) > 1 else None, "memory": r[2] if len(r) > 2 else None,
             "cuda": cuda, "source": "nvidia-smi"} for r in rows]


_CUDA_VERSION = re.compile(r"CUDA Version:\s*([0-9][0-9.]*)")


def _smi_cuda(smi: str) -> str | None:
    """The CUDA version the driver supports, from the header of plain `nvidia-smi` (no query field
    gives it)."""
    done = subprocess.run([smi], capture_output=True, text=True, timeout=10, check=False)
    found = _CUDA_VERSION.search(done.stdout)
    return found.group(1) if found else None


def _torch_gpus() -> list[dict]:
    torch = sys.modules.get("torch")  # only when the script already imported it: never import torch here
    try:
        if torch is not None and torch.cuda.is_available():
            return [{"name": torch.cuda.get_device_name(i), "cuda": torch.version.cuda, "source": "torch"}
                    for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 — a broken CUDA setup must not stop the run
        pass
    return []


_CI = [  # provider, marker variable, job URL (variables joined), runner variable
    ("github-actions", "GITHUB_ACTIONS", ("GITHUB_SERVER_URL", "/", "GITHUB_REPOSITORY", "/actions/runs/",
                                          "GITHUB_RUN_ID"), "RUNNER_NAME"),
    ("gitlab", "GITLAB_CI", ("CI_JOB_URL",), "CI_RUNNER_DESCRIPTION"),
    ("jenkins", "JENKINS_URL", ("BUILD_URL",), "NODE_NAME"),
    ("buildkite", "BUILDKITE", ("BUILDKITE_BUILD_URL",), "BUILDKITE_AGENT_NAME"),
    ("circleci", "CIRCLECI", ("CIRCLE_BUILD_URL",), "CIRCLE_NODE_INDEX"),
]


def ci_details() -> dict | None:
    """Provider, job URL and runner when `CI` is set (None otherwise)."""
    if not os.environ.get("CI"):
        return None
    for provider, marker, url_parts, runner in _CI:
        if os.environ.get(marker):
            url = "".join(os.environ.get(p, "") if p.isupper() else p for p in url_parts)
            return {"provider": provider, "job_url": url or None, "runner": os.environ.get(runner)}
    return {"provider": "unknown", "job_url": None, "runner": None}
