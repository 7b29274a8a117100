#!/usr/bin/env python3
"""Runicorn vs DVC: timing and peak memory of the everyday commands.

Usage:
    python3 benchmarks/bench.py [--work DIR] [--tools runicorn,dvc]
                                [--runicorn-bin runicorn] [--dvc-bin dvc]
                                [--scale 1.0] [--model-mib 1024] [--reps 3]
                                [--out results.json] [--keep] [--ssh] [--s3]

Data (generated once, deterministically, then reused from WORK/data):
  model.bin   MODEL_MIB MiB of seeded pseudo-random bytes (default 1 GiB).
  small100k/  100,000 files of 1-4 KiB in 1,000 folders (times --scale).
The generator is the one of the shared benchmark kit (same seed, same bytes).

Per tool, in a fresh git repository (WORK/runs/TOOL/repo), with the data
copied in (untimed), every step below runs after an untimed `sync` and is
timed (wall seconds; peak RSS of the child and its waited-for descendants,
from wait4(2)):
  init; add model.bin; add small100k; status x REPS (no change, median);
  status after changing one file of small100k; re-add small100k;
  checkout small100k after `rm -rf small100k`; checkout model.bin after `rm`.
Each checkout is verified against the expected bytes (all file names, the
sha256 of a sample of files and of the changed file; sha256 of model.bin).

Then, per tool, with a local-directory remote (WORK/runs/TOOL/remote-dir):
  `cp model.bin` x REPS (the physical baseline, median); push model.bin;
  push small100k; push x REPS (nothing new, median); pull small100k and pull
  model.bin after deleting both workspace copies and the whole cache (each
  pull verified like a checkout).
With --ssh / --s3 (Runicorn only; run with a Python that has pytest,
asyncssh, boto3 and moto, e.g. the project's venv), the same push/pull steps
run against a real OpenSSH server / a moto S3 server on loopback, started
with tests/servers.py.

Tool output goes to WORK/bench.log. Exit status: 0 if every command succeeded
and every checkout verified, 1 on a verification mismatch, 2 on a failed
command.
"""

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field

MiB = 1 << 20
SEED = 20240601
VERIFY_SAMPLE = 500

# ---------------------------------------------------------------------------
# Data generation (same algorithm and seed as shared/bench/make_data.py)
# ---------------------------------------------------------------------------


def _rng(seed, salt):
    return random.Random(f"{seed}:{salt}")


def build_model(dest_dir, seed, model_mib):
    """Write dest_dir/model.bin; return its manifest."""
    r = _rng(seed, "model")
    digest = hashlib.sha256()
    remaining = model_mib * MiB
    with open(os.path.join(dest_dir, "model.bin"), "wb") as f:
        while remaining:
            chunk = r.randbytes(min(4 * MiB, remaining))
            digest.update(chunk)
            f.write(chunk)
            remaining -= len(chunk)
    return {"name": "model.bin", "bytes": model_mib * MiB,
            "sha256": digest.hexdigest()}


def build_tree(dest_dir, seed, nfiles, ndirs, lo=1024, hi=4096):
    """Write dest_dir/small100k/dNNN/fNNNNNN.bin; return its manifest."""
    name = "small100k"
    r = _rng(seed, name)
    per_dir = nfiles // ndirs
    width = max(3, len(str(ndirs - 1)))
    total = 0
    for d in range(ndirs):
        dpath = os.path.join(dest_dir, name, f"d{d:0{width}d}")
        os.makedirs(dpath, exist_ok=True)
        for k in range(per_dir):
            data = r.randbytes(r.randint(lo, hi))
            with open(os.path.join(dpath, f"f{d * per_dir + k:06d}.bin"), "wb") as f:
                f.write(data)
            total += len(data)
    return {"name": name, "files": per_dir * ndirs, "dirs": ndirs, "bytes": total}


def ensure_dataset(data_root, key, build):
    """Return (path, manifest) of a dataset, building it unless already complete.

    A dataset lives in data_root/key/ and is complete once its MANIFEST.json
    exists (written last), so an interrupted generation is redone.
    """
    folder = os.path.join(data_root, key)
    manifest_path = os.path.join(folder, "MANIFEST.json")
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
        print(f"data: reusing {folder}", flush=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        print(f"data: generating {folder} ...", flush=True)
        start = time.perf_counter()
        manifest = build(folder)
        manifest["gen_seconds"] = round(time.perf_counter() - start, 2)
        with open(manifest_path, "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
    return os.path.join(folder, manifest["name"]), manifest


def ensure_data(data_root, seed, scale, model_mib):
    """Generate (or reuse) both datasets; return {name: (path, manifest)}."""
    nfiles = max(1000, round(100_000 * scale))
    ndirs = max(10, round(1000 * scale))
    model = ensure_dataset(data_root, f"model-{model_mib}MiB-seed{seed}",
                           lambda d: build_model(d, seed, model_mib))
    tree = ensure_dataset(data_root, f"small100k-{nfiles}x{ndirs}-seed{seed}",
                          lambda d: build_tree(d, seed, nfiles, ndirs))
    return {"model.bin": model, "small100k": tree}


# ---------------------------------------------------------------------------
# Measuring one command
# ---------------------------------------------------------------------------


@dataclass
class Measurement:
    tool: str
    op: str
    dataset: str
    rep: int
    wall_s: float
    user_s: float
    sys_s: float
    peak_mib: float
    rc: int
    argv: list = field(default_factory=list)


def run_measured(argv, cwd, env, log, timeout):
    """Run argv after `sync`; return (wall, user, sys, peak MiB, rc).

    The child is reaped with os.wait4, whose rusage covers only this child
    (and the descendants it waited for), so ru_maxrss is its own peak RSS.
    """
    os.sync()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    killer = threading.Timer(timeout, _kill_group, (proc.pid,))
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def _kill_group(pid):
    print(f"!!! timeout: killing process group {pid}", file=sys.stderr, flush=True)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_quiet(argv, cwd, env, log, check=True):
    """Untimed helper command (setup); raises on failure if `check`."""
    log.write(f"### (untimed) {' '.join(argv)}\n".encode())
    log.flush()
    return subprocess.run(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, check=check).returncode


def remove_path(path):
    """rm -rf, making read-only folders writable first if needed."""
    if subprocess.run(["rm", "-rf", path], stderr=subprocess.DEVNULL).returncode:
        subprocess.run(["chmod", "-R", "u+w", path], check=False)
        subprocess.run(["rm", "-rf", path], check=True)


# ---------------------------------------------------------------------------
# Tool adapters
# ---------------------------------------------------------------------------


class Tool:
    """Command lines of one data-versioning tool (Runicorn's CLI by default)."""

    name = "runicorn"

    def __init__(self, exe):
        self.exe = exe

    def version(self):
        return [self.exe, "--version"]

    def init(self):
        return [self.exe, "init"]

    def after_init(self):
        """Untimed configuration commands run right after init."""
        return []

    def add(self, path):
        return [self.exe, "add", path]

    def status(self):
        return [self.exe, "status"]

    def checkout(self, path):
        return [self.exe, "checkout", path]

    cache_dir = ".runicorn/cache"

    def remote_add(self, name, url):
        return [self.exe, "remote", "add", name, url, "--default"]

    def remote_modify(self, name, option, value):
        return [self.exe, "remote", "modify", name, option, value, "--scope", "local"]

    def push(self, path=None):
        return [self.exe, "push"] + ([path] if path else [])

    def pull(self, path):
        return [self.exe, "pull", path]

    def pull_from(self, remote):
        return [self.exe, "pull", "-r", remote]

    def env(self, run_dir):
        return {}


class Dvc(Tool):
    name = "dvc"

    def after_init(self):
        return [[self.exe, "config", "core.analytics", "false"],
                [self.exe, "config", "core.check_update", "false"]]

    def checkout(self, path):
        return [self.exe, "checkout", path + ".dvc"]

    cache_dir = ".dvc/cache"

    def remote_add(self, name, url):
        return [self.exe, "remote", "add", "-d", name, url]

    def remote_modify(self, name, option, value):
        return [self.exe, "remote", "modify", "--local", name, option, value]

    def push(self, path=None):
        return [self.exe, "push"] + ([path + ".dvc"] if path else [])

    def pull(self, path):
        return [self.exe, "pull", path + ".dvc"]

    def pull_from(self, remote):
        return [self.exe, "pull", "-r", remote]

    def env(self, run_dir):
        # a per-run state/index database, so no run profits from an earlier one
        return {"DVC_NO_ANALYTICS": "1",
                "DVC_SITE_CACHE_DIR": os.path.join(run_dir, "dvc_site_cache")}


TOOL_CLASSES = {"runicorn": Tool, "dvc": Dvc}


def find_tools(names, bins):
    """Instantiate the requested tools whose executable exists; skip others."""
    tools = []
    for name in names:
        if name not in TOOL_CLASSES:
            sys.exit(f"unknown tool {name!r}; known: {', '.join(TOOL_CLASSES)}")
        exe = shutil.which(bins[name])
        if exe is None:
            print(f"skipping {name}: executable {bins[name]!r} not found "
                  f"(use --{name}-bin)", flush=True)
            continue
        tools.append(TOOL_CLASSES[name](exe))
    return tools


# ---------------------------------------------------------------------------
# Remote back ends
# ---------------------------------------------------------------------------


@dataclass
class Backend:
    """A remote the push/pull steps run against.

    `name` labels the steps ("dir" is unlabelled: "push"; others "push (ssh)").
    `options` are (option, value) pairs set with the tool's remote_modify
    (Runicorn: `remote modify NAME OPTION VALUE --scope local`).
    """

    name: str
    remote: str
    url: str
    options: list = field(default_factory=list)

    @property
    def suffix(self):
        return "" if self.name == "dir" else f" ({self.name})"


def load_servers_module():
    """tests/servers.py (needs pytest, asyncssh, boto3, moto: the project's venv)."""
    tests = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests")
    sys.path.insert(0, os.path.normpath(tests))
    try:
        import servers
    except ImportError as exc:
        sys.exit(f"--ssh/--s3 need tests/servers.py and what it imports ({exc}); "
                 f"pass --servers-python with the project's Python, e.g. /tmp/venv/bin/python")
    return servers


def serve(work, which):
    """Server helper (`bench.py --serve ssh,s3 --work DIR`, run by Servers):
    start the servers with tests/servers.py, print their details as one JSON
    line, then keep them up until stdin closes (the benchmark ended or died).

    A separate process, so the measuring process stays small: a child forked
    from it inherits its peak RSS, which would inflate every peak measured.
    Servers spawned from this process's main thread get SIGKILL when it dies.
    """
    import pathlib
    import pwd

    mod = load_servers_module()
    base = pathlib.Path(work, "servers")
    started, details = [], {}
    try:
        if "ssh" in which:
            if not os.path.exists(mod.SSHD):
                sys.exit(mod.SSHD_MISSING)
            if os.geteuid() == 0:
                os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
            workdir = base / "sshd"
            shutil.rmtree(workdir, ignore_errors=True)
            os.makedirs(workdir / "root")
            srv = mod.SSHServer(workdir=workdir, root=str(workdir / "root"),
                                user=pwd.getpwuid(os.getuid()).pw_name)
            srv.generate_keys()
            mod.start_on_free_port(srv)
            started.append(srv)
            details["ssh"] = {"host": srv.host, "port": srv.port, "user": srv.user,
                              "keyfile": srv.keyfile, "log": str(srv.log)}
        if "s3" in which:
            workdir = base / "moto"
            shutil.rmtree(workdir, ignore_errors=True)
            os.makedirs(workdir)
            srv = mod.S3Server(workdir=workdir)
            mod.start_on_free_port(srv)
            started.append(srv)
            details["s3"] = {"endpoint_url": srv.endpoint_url, "bucket": srv.bucket,
                             "region": srv.region, "key": srv.key, "secret": srv.secret,
                             "log": str(srv.log)}
        print(json.dumps(details), flush=True)
        sys.stdin.read()
    finally:
        for srv in started:
            srv.kill()
    return 0


class Servers:
    """A real OpenSSH server and/or a moto S3 server on loopback, started the
    way the fixtures of tests/servers.py start them, in a helper process
    (see serve()); stop() ends them."""

    def __init__(self, work, which, python):
        self.proc = subprocess.Popen(
            [python, os.path.abspath(__file__), "--serve", ",".join(which), "--work", work],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            sys.exit(f"the server helper ({python}) failed to start the servers; see above")
        self.details = json.loads(line)
        for name, d in self.details.items():
            where = d.get("endpoint_url") or f"{d['host']}:{d['port']}"
            print(f"server: {name} on {where} (log {d['log']})", flush=True)

    def backends(self, run_dir, tool_name):
        """Backends of these servers for one tool run (remote data under run_dir / tool_name)."""
        out = []
        if "ssh" in self.details:
            d = self.details["ssh"]
            out.append(Backend("ssh", "store_ssh", f"ssh://{d['host']}{run_dir}/remote-ssh",
                               [("keyfile", d["keyfile"]), ("user", d["user"]),
                                ("port", str(d["port"])), ("known_hosts", "none")]))
        if "s3" in self.details:
            d = self.details["s3"]
            out.append(Backend("s3", "store_s3", f"s3://{d['bucket']}/{tool_name}",
                               [("endpoint_url", d["endpoint_url"]), ("region", d["region"]),
                                ("access_key_id", d["key"]), ("secret_access_key", d["secret"])]))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------
# Checking checked-out data
# ---------------------------------------------------------------------------


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def list_files(root):
    """Sorted paths of all files under root, relative to root."""
    found = []
    for folder, _, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        found.extend(os.path.normpath(os.path.join(rel, f)) for f in files)
    return sorted(found)


def verify_tree(pristine, workspace, changed):
    """Problems (strings) of workspace vs pristine, `changed` = {rel: sha256}."""
    if not os.path.isdir(workspace):
        return [f"{workspace} is missing or not a folder"]
    expected, actual = list_files(pristine), list_files(workspace)
    problems = []
    missing, extra = set(expected) - set(actual), set(actual) - set(expected)
    if missing:
        problems.append(f"{len(missing)} files missing, e.g. {sorted(missing)[:3]}")
    if extra:
        problems.append(f"{len(extra)} unexpected files, e.g. {sorted(extra)[:3]}")
    step = max(1, len(expected) // VERIFY_SAMPLE)
    for rel in sorted(set(expected[::step]) | set(changed)):
        path = os.path.join(workspace, rel)
        want = changed.get(rel) or sha256_file(os.path.join(pristine, rel))
        if not os.path.isfile(path):
            continue  # already counted as missing
        if sha256_file(path) != want:
            problems.append(f"content differs: {rel}")
    return problems


def verify_file(path, want_sha256):
    if not os.path.isfile(path):
        return [f"{path} is missing"]
    if sha256_file(path) != want_sha256:
        return [f"content differs: {os.path.basename(path)}"]
    return []


def change_one_file(tree_root):
    """Replace the middle file of the tree by an edited copy (new inode, same
    size, 8 bytes changed), the way an editor saves; return {rel: sha256}.

    Writing to a new file and renaming it never writes through a hardlink or
    a read-only cache file a tool may have put in the workspace.
    """
    files = list_files(tree_root)
    rel = files[len(files) // 2]
    path = os.path.join(tree_root, rel)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[10:18] = b"CHANGED!"
    tmp = path + ".bench-tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return {rel: hashlib.sha256(data).hexdigest()}


# ---------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------


class Bench:
    """One benchmark session: data, log, measurements and verifications."""

    def __init__(self, args, data, servers=None):
        self.args = args
        self.data = data
        self.servers = servers
        self.loadavg_start = os.getloadavg()
        self.log = open(os.path.join(args.work, "bench.log"), "ab")
        self.results = []
        self.verifications = []
        self.versions = {}

    def step(self, tool, ctx, op, dataset, argv, rep=1):
        """Time one tool command in the repo; record and print it."""
        self.log.write(f"### [{tool.name}] {op} | {dataset} | rep {rep}: "
                       f"{' '.join(argv)}\n".encode())
        self.log.flush()
        offset = self.log.tell()
        wall, user, sys_s, peak, rc = run_measured(
            argv, ctx["repo"], ctx["env"], self.log, self.args.timeout)
        m = Measurement(tool.name, op, dataset, rep, round(wall, 3), round(user, 3),
                        round(sys_s, 3), round(peak, 1), rc, argv)
        self.results.append(m)
        print(f"  {tool.name:9} {op:11} {dataset:32} rep {rep}  {wall:8.2f} s  "
              f"{peak:7.1f} MiB  rc={rc}", flush=True)
        if rc != 0:
            self._report_failure(offset)
        return m

    def _report_failure(self, offset):
        with open(self.log.name, "rb") as f:
            f.seek(offset)
            tail = f.read().decode(errors="replace").splitlines()[-15:]
        print("!!! command FAILED; last lines of its output:", file=sys.stderr)
        for line in tail:
            print(f"    | {line}", file=sys.stderr)
        sys.stderr.flush()

    def verify(self, tool, dataset, problems):
        ok = not problems
        self.verifications.append({"tool": tool.name, "dataset": dataset,
                                   "ok": ok, "problems": problems[:20]})
        if ok:
            print(f"  {tool.name:9} verify      {dataset:32} ok", flush=True)
            return ok
        print(f"\n!!!!!! VERIFY FAILED: {tool.name} restore of {dataset} does NOT "
              f"match the original ({len(problems)} problems) !!!!!!", file=sys.stderr)
        for p in problems[:10]:
            print(f"!!!   {p}", file=sys.stderr)
        sys.stderr.flush()
        return ok

    def run_tool(self, tool):
        ctx = self.prepare_repo(tool)
        print(f"== {tool.name} ({self.versions[tool.name]}) in {ctx['repo']}", flush=True)
        self.phase_add(tool, ctx)
        self.phase_status(tool, ctx)
        self.phase_checkout(tool, ctx)
        self.phase_remote(tool, ctx, Backend(
            "dir", "store", os.path.join(ctx["run_dir"], "remote-dir")))
        if self.servers is not None and tool.name == "runicorn":
            for backend in self.servers.backends(ctx["run_dir"], tool.name):
                self.phase_remote(tool, ctx, backend)
        if not self.args.keep:
            remove_path(ctx["run_dir"])

    def prepare_repo(self, tool):
        """Fresh git repo with the data copied in (untimed)."""
        run_dir = os.path.join(self.args.work, "runs", tool.name)
        repo = os.path.join(run_dir, "repo")
        remove_path(run_dir)
        os.makedirs(repo)
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", **tool.env(run_dir))
        ctx = {"run_dir": run_dir, "repo": repo, "env": env}
        self.versions[tool.name] = subprocess.run(
            tool.version(), env=env, capture_output=True, text=True
        ).stdout.strip().replace("\n", " ")
        for argv in (["git", "init", "-q", "-b", "main"],
                     ["git", "config", "user.name", "bench"],
                     ["git", "config", "user.email", "bench@example.com"]):
            run_quiet(argv, repo, env, self.log)
        for path, _ in self.data.values():
            run_quiet(["cp", "-a", path, repo], repo, env, self.log)
        return ctx

    def phase_add(self, tool, ctx):
        self.step(tool, ctx, "init", "-", tool.init())
        for argv in tool.after_init():
            run_quiet(argv, ctx["repo"], ctx["env"], self.log)
        self.step(tool, ctx, "add", "model.bin", tool.add("model.bin"))
        self.step(tool, ctx, "add", "small100k", tool.add("small100k"))

    def phase_status(self, tool, ctx):
        for rep in range(1, self.args.reps + 1):
            self.step(tool, ctx, "status", "no change", tool.status(), rep)
        ctx["changed"] = change_one_file(os.path.join(ctx["repo"], "small100k"))
        self.step(tool, ctx, "status", "small100k, 1 file changed", tool.status())
        self.step(tool, ctx, "add", "small100k, 1 file changed", tool.add("small100k"))

    def phase_checkout(self, tool, ctx):
        tree = os.path.join(ctx["repo"], "small100k")
        remove_path(tree)
        self.step(tool, ctx, "checkout", "small100k", tool.checkout("small100k"))
        self.verify(tool, "small100k", verify_tree(
            self.data["small100k"][0], tree, ctx["changed"]))
        model = os.path.join(ctx["repo"], "model.bin")
        remove_path(model)
        self.step(tool, ctx, "checkout", "model.bin", tool.checkout("model.bin"))
        self.verify(tool, "model.bin", verify_file(
            model, self.data["model.bin"][1]["sha256"]))

    def phase_remote(self, tool, ctx, backend):
        """Push both datasets to `backend`, a no-op push, then pull both back
        after deleting the workspace copies and the whole cache; verify."""
        repo, sfx = ctx["repo"], backend.suffix
        tree, model = os.path.join(repo, "small100k"), os.path.join(repo, "model.bin")
        if backend.name == "dir":
            self.phase_cp(tool, ctx, model)
        elif not ctx.get("restored", True):
            # the last pull failed, so workspace and cache lack data: refill
            # them from the directory remote (untimed) before pushing again
            print(f"  {tool.name:9} (untimed) refilling the cache from the directory remote "
                  f"after a failed pull", flush=True)
            rc = run_quiet(tool.pull_from("store"), repo, ctx["env"], self.log, check=False)
            if rc:
                print(f"!!! refill failed (rc={rc}): the {backend.name} steps will lack data",
                      file=sys.stderr, flush=True)
        run_quiet(tool.remote_add(backend.remote, backend.url), repo, ctx["env"], self.log)
        for option, value in backend.options:
            run_quiet(tool.remote_modify(backend.remote, option, value), repo, ctx["env"],
                      self.log)
        self.step(tool, ctx, "push" + sfx, "model.bin", tool.push("model.bin"))
        self.step(tool, ctx, "push" + sfx, "small100k", tool.push("small100k"))
        for rep in range(1, self.args.reps + 1):
            self.step(tool, ctx, "push" + sfx, "no change", tool.push(), rep)
        for path in (tree, model, os.path.join(repo, tool.cache_dir)):
            remove_path(path)
        self.step(tool, ctx, "pull" + sfx, "small100k", tool.pull("small100k"))
        ok = self.verify(tool, f"small100k (pull{sfx})", verify_tree(
            self.data["small100k"][0], tree, ctx["changed"]))
        self.step(tool, ctx, "pull" + sfx, "model.bin", tool.pull("model.bin"))
        ok &= self.verify(tool, f"model.bin (pull{sfx})", verify_file(
            model, self.data["model.bin"][1]["sha256"]))
        ctx["restored"] = ok

    def phase_cp(self, tool, ctx, model):
        """The physical baseline: `cp` of model.bin to a new file on the same
        file system as the directory remote; also cp followed by an fsync of
        the copy (coreutils `sync FILE`), for reference."""
        dest = os.path.join(ctx["run_dir"], "cp-baseline.bin")
        for rep in range(1, self.args.reps + 1):
            self.step(tool, ctx, "cp", "model.bin", ["cp", model, dest], rep)
            remove_path(dest)
        for rep in range(1, self.args.reps + 1):
            self.step(tool, ctx, "cp + fsync", "model.bin",
                      ["sh", "-c", 'cp "$0" "$1" && sync "$1"', model, dest], rep)
            remove_path(dest)


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

ROWS = [("init", "-"), ("add", "model.bin"), ("add", "small100k"),
        ("status", "no change"), ("status", "small100k, 1 file changed"),
        ("add", "small100k, 1 file changed"), ("checkout", "small100k"),
        ("checkout", "model.bin")]

# steps that handle the 100k-file tree (for the memory target)
TREE_ROWS = ROWS[2:7]

# the directory remote, and the cp baseline
REMOTE_ROWS = [("cp", "model.bin"), ("cp + fsync", "model.bin"),
               ("push", "model.bin"), ("push", "small100k"), ("push", "no change"),
               ("pull", "small100k"), ("pull", "model.bin")]
ROWS = ROWS + REMOTE_ROWS

# steps repeated --reps times (median reported)
MEDIAN_ROWS = {("status", "no change"), ("cp", "model.bin"), ("cp + fsync", "model.bin"),
               ("push", "no change")}

CP_ROW = ("cp", "model.bin")

# (description, rows, metric, limit). Metrics:
#   "wall"  max wall seconds of the rows <= limit
#   "peak"  max peak MiB of the rows <= limit
#   "x_cp"  max wall of the rows / the same tool's median `cp` of model.bin <= limit
#   "x_dvc" DVC's wall / this tool's wall on the row >= limit (tools other than DVC)
TARGETS = [
    ("add 1 GiB file", [("add", "model.bin")], "wall", 1.0),
    ("add 100k files", [("add", "small100k")], "wall", 4.0),
    ("no-op status on 100k files", [("status", "no change")], "wall", 0.6),
    ("checkout 100k files", [("checkout", "small100k")], "wall", 3.0),
    ("peak memory on 100k files (MiB)", TREE_ROWS, "peak", 150.0),
    ("push 100k files, speed-up over DVC", [("push", "small100k")], "x_dvc", 2.0),
    ("pull 100k files, speed-up over DVC", [("pull", "small100k")], "x_dvc", 2.0),
    ("no-op push", [("push", "no change")], "wall", 1.0),
    ("push 1 GiB file, time / cp", [("push", "model.bin")], "x_cp", 1.5),
    ("pull 1 GiB file, time / cp", [("pull", "model.bin")], "x_cp", 1.5),
]


def summarize(results):
    """{(tool, op, dataset): {wall_s (median), peak_mib (max), rc, n}}."""
    groups = {}
    for m in results:
        groups.setdefault((m.tool, m.op, m.dataset), []).append(m)
    return {key: {"wall_s": round(statistics.median(m.wall_s for m in ms), 3),
                  "peak_mib": max(m.peak_mib for m in ms),
                  "rc": next((m.rc for m in ms if m.rc), 0), "n": len(ms)}
            for key, ms in groups.items()}


def fmt_seconds(cell):
    if cell is None:
        return "-"
    text = f"{cell['wall_s']:.2f}"
    return text if cell["rc"] == 0 else f"{text} (rc={cell['rc']})"


def fmt_ratio(summary, row):
    r, d = summary.get(("runicorn",) + row), summary.get(("dvc",) + row)
    if not r or not d or r["rc"] or d["rc"] or r["wall_s"] <= 0:
        return "-"
    return f"{d['wall_s'] / r['wall_s']:.1f}x"


def print_table(headers, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    for line in [headers, ["-" * w for w in widths]] + rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |")


def timing_table(summary):
    rows = []
    for row in ROWS:
        r, d = summary.get(("runicorn",) + row), summary.get(("dvc",) + row)
        label = row[1] + (" (median)" if row in MEDIAN_ROWS else "")
        rows.append([row[0], label, fmt_seconds(r), fmt_seconds(d),
                     "" if row[0].startswith("cp") else fmt_ratio(summary, row),
                     f"{r['peak_mib']:.0f}" if r else "-",
                     f"{d['peak_mib']:.0f}" if d else "-"])
    print_table(["operation", "dataset", "runicorn s", "dvc s", "ratio dvc/runicorn",
                 "runicorn peak MiB", "dvc peak MiB"], rows)


LIMIT_TEXT = {"wall": "<= {:g} s", "peak": "<= {:g}", "x_cp": "<= {:g}x cp",
              "x_dvc": ">= {:g}x"}


def target_value(summary, tool, rows, metric):
    """(value, failed command?) of one target for one tool, or None if not measured."""
    cells = [summary.get((tool,) + row) for row in rows]
    if metric == "x_cp":
        cells.append(summary.get((tool,) + CP_ROW))
    elif metric == "x_dvc":
        if tool == "dvc":
            return None
        cells += [summary.get(("dvc",) + row) for row in rows]
    if any(c is None for c in cells):
        return None
    failed = any(c["rc"] for c in cells)
    if metric == "peak":
        return max(c["peak_mib"] for c in cells), failed
    if metric == "wall":
        return max(c["wall_s"] for c in cells), failed
    if metric == "x_cp":
        cp = cells[-1]["wall_s"]
        return max(c["wall_s"] for c in cells[:-1]) / max(cp, 1e-3), failed
    ours, dvc = cells[:len(rows)], cells[len(rows):]
    return max(d["wall_s"] for d in dvc) / max(max(c["wall_s"] for c in ours), 1e-3), failed


def evaluate_targets(summary, tools):
    """[{target, limit, metric, tool: {value, pass}}] for every target and tool."""
    out = []
    for desc, rows, metric, limit in TARGETS:
        entry = {"target": desc, "limit": limit, "metric": metric}
        for tool in tools:
            found = target_value(summary, tool, rows, metric)
            if found is None:
                continue
            value, failed = found
            ok = value >= limit if metric == "x_dvc" else value <= limit
            entry[tool] = {"value": round(value, 3), "pass": ok and not failed,
                           "failed_command": failed}
        out.append(entry)
    return out


def targets_table(targets, tools):
    rows = []
    for t in targets:
        cells = []
        for tool in tools:
            v = t.get(tool)
            digits = 0 if t["metric"] == "peak" else 2
            unit = "x" if t["metric"] in ("x_cp", "x_dvc") else ""
            mark = "-" if v is None else (
                f"{v['value']:.{digits}f}{unit} {'PASS' if v['pass'] else 'MISS'}"
                + (" (command failed)" if v["failed_command"] else ""))
            cells.append(mark)
        rows.append([t["target"], LIMIT_TEXT[t["metric"]].format(t["limit"])] + cells)
    print_table(["target", "limit"] + list(tools), rows)


def backends_table(summary, tool="runicorn"):
    """Runicorn's push/pull on every remote back end measured (dir, ssh, s3)."""
    names = [b for b in ("dir", "ssh", "s3")
             if any(k[0] == tool and k[1] == "push" + ("" if b == "dir" else f" ({b})")
                    for k in summary)]
    if names == ["dir"] or not names:
        return False
    cp = summary.get((tool,) + CP_ROW)
    rows = []
    for op in ("push", "pull"):
        for dataset in ("model.bin", "small100k", "no change"):
            if op == "pull" and dataset == "no change":
                continue
            cells = [summary.get((tool, op + ("" if b == "dir" else f" ({b})"), dataset))
                     for b in names]
            label = dataset + (" (median)" if dataset == "no change" else "")
            ratio = []
            if dataset == "model.bin" and cp and cp["wall_s"] > 0:
                ratio = [" / ".join("-" if not c or c["rc"] else f"{c['wall_s'] / cp['wall_s']:.1f}"
                                    for c in cells)]
            elif dataset == "model.bin":
                ratio = ["-"]
            else:
                ratio = [""]
            rows.append([op, label] + [fmt_seconds(c) for c in cells] + ratio
                        + [f"{c['peak_mib']:.0f}" if c else "-" for c in cells])
    print(f"\n## {tool} remote back ends (wall seconds; cp of model.bin: "
          f"{fmt_seconds(cp)} s)\n")
    print_table(["operation", "dataset"] + [f"{b} s" for b in names]
                + [f"x cp ({' / '.join(names)})"] + [f"{b} peak MiB" for b in names], rows)
    return True


def report(bench, tools, scaled):
    summary = summarize(bench.results)
    names = [t.name for t in tools]
    print("\nload average (1, 5, 15 min): at start "
          + ", ".join(f"{x:.2f}" for x in bench.loadavg_start) + "; at end "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("\n## Timings (wall seconds; peak RSS of the child process)\n")
    timing_table(summary)
    backends_table(summary)
    print("\n## Targets" + (" (SCALED-DOWN DATA: the limits are meant for the "
                            "full-size data, markers are indicative only)" if scaled else "")
          + "\n")
    targets = evaluate_targets(summary, names)
    targets_table(targets, names)
    print("\n## Checkout and pull verification\n")
    for v in bench.verifications:
        state = "ok" if v["ok"] else "MISMATCH: " + "; ".join(v["problems"][:3])
        print(f"- {v['tool']} {v['dataset']}: {state}")
    bad = [v for v in bench.verifications if not v["ok"]]
    if bad:
        print(f"\n!!!!!! {len(bad)} CHECKOUT(S)/PULL(S) DID NOT RESTORE THE ORIGINAL BYTES !!!!!!")
    failed = sum(1 for m in bench.results if m.rc)
    if failed:
        print(f"\n!!! {failed} timed command(s) failed (rc != 0): see the log")
    return summary, targets


def write_json(path, bench, summary, targets):
    doc = {
        "args": vars(bench.args),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "loadavg_start": bench.loadavg_start, "loadavg_end": os.getloadavg()},
        "versions": bench.versions,
        "data": {name: manifest for name, (_, manifest) in bench.data.items()},
        "measurements": [asdict(m) for m in bench.results],
        "summary": [{"tool": k[0], "op": k[1], "dataset": k[2], **v}
                    for k, v in summary.items()],
        "targets": targets,
        "verifications": bench.verifications,
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"\nresults written to {path}")


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/rn-bench",
                    help="work dir: data/, runs/, bench.log (default %(default)s)")
    ap.add_argument("--tools", default="runicorn,dvc", help="default %(default)s")
    ap.add_argument("--runicorn-bin", default="runicorn", help="default %(default)s")
    ap.add_argument("--dvc-bin", default="dvc", help="default %(default)s")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the small-file counts (0.01 for a smoke test)")
    ap.add_argument("--model-mib", type=int, default=1024,
                    help="size of model.bin in MiB (default %(default)s)")
    ap.add_argument("--reps", type=int, default=3,
                    help="repeats of the no-op status (median reported)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--timeout", type=float, default=3600,
                    help="seconds before a timed command is killed")
    ap.add_argument("--out", help="write the results as JSON to this file")
    ap.add_argument("--keep", action="store_true",
                    help="keep WORK/runs/TOOL (repo and cache) after the run")
    ap.add_argument("--ssh", action="store_true",
                    help="also time Runicorn push/pull to a real OpenSSH server on loopback")
    ap.add_argument("--s3", action="store_true",
                    help="also time Runicorn push/pull to a moto S3 server on loopback")
    ap.add_argument("--servers-python", default=sys.executable,
                    help="Python that can import tests/servers.py (pytest, asyncssh, boto3, "
                         "moto), used to run the servers for --ssh/--s3 (default: this one)")
    ap.add_argument("--serve", help=argparse.SUPPRESS)  # internal: the server helper
    return ap.parse_args(argv)


def check_space(work, data):
    # data, its copy in the repo, the cache, the directory remote
    need = 4 * sum(m.get("bytes", 0) for _, m in data.values()) + (1 << 30)
    free = shutil.disk_usage(work).free
    if free < need:
        print(f"warning: {free / 2**30:.1f} GiB free in {work}, a tool run needs "
              f"about {need / 2**30:.1f} GiB", file=sys.stderr, flush=True)


def main(argv=None):
    args = parse_args(argv)
    args.work = os.path.abspath(args.work)
    os.makedirs(args.work, exist_ok=True)
    if args.serve:
        return serve(args.work, args.serve.split(","))
    tools = find_tools(args.tools.split(","),
                       {"runicorn": args.runicorn_bin, "dvc": args.dvc_bin})
    if not tools:
        sys.exit("no tool to benchmark")
    data = ensure_data(os.path.join(args.work, "data"), args.seed, args.scale,
                       args.model_mib)
    check_space(args.work, data)
    servers = None
    if args.ssh or args.s3:
        if any(t.name == "runicorn" for t in tools):
            which = [n for n, on in (("ssh", args.ssh), ("s3", args.s3)) if on]
            servers = Servers(args.work, which, args.servers_python)
        else:
            print("--ssh/--s3 time Runicorn only, which is not run: ignored", flush=True)
    bench = Bench(args, data, servers)
    try:
        for tool in tools:
            bench.run_tool(tool)
    finally:
        if servers is not None:
            servers.stop()
    scaled = args.scale != 1.0 or args.model_mib != 1024
    summary, targets = report(bench, tools, scaled)
    if args.out:
        write_json(args.out, bench, summary, targets)
    if not all(v["ok"] for v in bench.verifications):
        return 1
    return 2 if any(m.rc for m in bench.results) else 0


if __name__ == "__main__":
    sys.exit(main())
