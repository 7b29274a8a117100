"""Real servers on loopback for remote tests: OpenSSH (`sshd_server`) and S3 via moto (`s3_server`).

A pytest plugin: load it with `pytest_plugins = ["servers"]` in tests/conftest.py, or with
`-p servers` when tests/ is on sys.path. Both fixtures are session-scoped; each yields a small
object with the connection details, `filesystem()` for a fresh (uncached) fsspec filesystem, and
`kill()` / `start()` / `kill_and_restart()` for "server killed mid-transfer" tests.

What works on this machine and the pitfalls: ../shared/TESTING-REAL-SERVERS.md. System packages:
`.ci/install-test-deps.sh`.
"""
from __future__ import annotations

import asyncio
import ctypes
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
SSHD_MISSING = "openssh-server not installed: run .ci/install-test-deps.sh"
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
START_ATTEMPTS = 3  # a free port can be taken between probing it and the server binding it


class ServerStartError(RuntimeError):
    """A server process did not come up; the message carries the tail of its log."""


# --- processes -------------------------------------------------------------------------------

def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """preexec_fn: the server gets SIGKILL if pytest dies, so no orphan outlives the run (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn(argv: list[str], log: Path) -> subprocess.Popen:
    """Start a server process with stdout and stderr appended to `log`. Started from the main
    thread, it dies with pytest; not from other threads, since PDEATHSIG fires when the forking
    *thread* ends (a server restarted from a timer thread would otherwise vanish with it)."""
    on_main = threading.current_thread() is threading.main_thread()
    guard = _die_with_parent if on_main and sys.platform == "linux" else None
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=guard)


def _descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (from /proc; empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def kill_tree(proc: subprocess.Popen | None) -> None:
    """SIGKILL a server and all its children (sshd's per-connection processes run in their own
    sessions, so a process group kill would miss them and live connections would survive)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGSTOP)  # no new children while we list them
    for pid in [*_descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


def wait_until(ready, proc: subprocess.Popen, log: Path, what: str) -> None:
    """Poll `ready()` until true; fail fast with the log tail if the process exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    delay = 0.01
    while not ready():
        if proc.poll() is not None:
            raise ServerStartError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            kill_tree(proc)
            raise ServerStartError(f"{what} not ready after {START_TIMEOUT:.0f} s:\n{_tail(log)}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_on_free_port(server) -> None:
    """Give `server` a free port and start it, retrying with another port if the start fails."""
    for attempt in range(START_ATTEMPTS):
        server.port = free_port()
        try:
            server.start()
            return
        except ServerStartError:
            if attempt == START_ATTEMPTS - 1:
                raise


# --- OpenSSH ---------------------------------------------------------------------------------

def _write_keypair(private: Path) -> None:
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(private))
    key.write_public_key(str(private) + ".pub")
    private.chmod(0o600)  # sshd refuses group/world-readable host keys even with StrictModes no


@dataclass
class SSHServer:
    """A throwaway sshd on loopback. All its files live in `workdir`; remotes go under `root`."""

    workdir: Path = field(repr=False)
    root: str
    user: str
    host: str = HOST
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    @property
    def keyfile(self) -> str:
        return str(self.workdir / "user_ed25519")

    @property
    def log(self) -> Path:
        return self.workdir / "sshd.log"

    @property
    def url(self) -> str:
        """ssh:// URL of `root`."""
        return f"ssh://{self.user}@{self.host}:{self.port}{self.root}"

    def connect_kwargs(self) -> dict:
        return {"port": self.port, "username": self.user, "client_keys": [self.keyfile],
                "known_hosts": None}

    def filesystem(self, **kwargs):
        """A new sshfs.SSHFileSystem (never fsspec's cached instance, which may hold a dead link)."""
        import sshfs

        return sshfs.SSHFileSystem(self.host, skip_instance_cache=True,
                                   **{**self.connect_kwargs(), **kwargs})

    def generate_keys(self) -> None:
        _write_keypair(self.workdir / "host_ed25519")
        _write_keypair(self.workdir / "user_ed25519")

    def write_config(self) -> Path:
        """sshd_config with absolute paths only: sshd re-executes itself from `/`."""
        w = self.workdir
        lines = [
            f"Port {self.port}", f"ListenAddress {self.host}", f"HostKey {w / 'host_ed25519'}",
            f"AuthorizedKeysFile {w / 'user_ed25519.pub'}", f"PidFile {w / 'sshd.pid'}",
            "PubkeyAuthentication yes", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
            "StrictModes no", "UsePAM no", "UseDNS no", "PrintMotd no",
            "Subsystem sftp internal-sftp",
            "MaxStartups 100", "MaxSessions 100",  # parallel transfer tests open many channels
        ]
        config = w / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> None:
        """Start sshd on `self.port`; return once an SFTP login works."""
        config = self.write_config()
        self.proc = spawn([SSHD, "-D", "-e", "-f", str(config)], self.log)
        wait_until(self.sftp_login_works, self.proc, self.log, f"sshd on port {self.port}")

    def kill(self) -> None:
        """SIGKILL sshd and every per-connection child: open connections drop at once."""
        kill_tree(self.proc)
        self.proc = None

    def kill_and_restart(self) -> None:
        """Kill sshd, then start it again on the same port with the same keys; files in `root` stay."""
        self.kill()
        self.start()

    def sftp_login_works(self) -> bool:
        return asyncio.run(_sftp_probe(self.host, self.connect_kwargs(), self.root))


async def _sftp_probe(host: str, connect_kwargs: dict, path: str) -> bool:
    import asyncssh

    try:
        async with asyncssh.connect(host, **connect_kwargs, login_timeout=5) as conn:
            async with conn.start_sftp_client() as sftp:
                await sftp.listdir(path)
        return True
    except (OSError, asyncssh.Error):
        return False


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory):
    """A real OpenSSH server on a free loopback port (see SSHServer)."""
    if not os.path.exists(SSHD):
        pytest.skip(SSHD_MISSING)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
    server = SSHServer(workdir=tmp_path_factory.mktemp("sshd").resolve(),
                       root=str(tmp_path_factory.mktemp("sshd-remote").resolve()),
                       user=pwd.getpwuid(os.getuid()).pw_name)
    server.generate_keys()
    start_on_free_port(server)
    try:
        yield server
    finally:
        server.kill()


# --- S3 (moto server) ------------------------------------------------------------------------

def moto_command() -> list[str]:
    """moto's server script next to this interpreter, else `python -m moto.server`."""
    script = Path(sys.executable).parent / "moto_server"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "moto.server"]


def http_answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except urllib.error.HTTPError:
        return True  # any HTTP status means the server is up
    except OSError:
        return False


@dataclass
class S3Server:
    """moto in server mode on loopback, with one bucket. Data lives in moto's memory only:
    `kill_and_restart()` and `reset()` lose every object (the empty bucket is re-created)."""

    workdir: Path = field(repr=False)
    bucket: str = "runicorn-test"
    key: str = "testing"
    secret: str = "testing"
    region: str = "us-east-1"
    host: str = HOST
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}"

    @property
    def log(self) -> Path:
        return self.workdir / "moto.log"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should reach this server (never set globally)."""
        return {"AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret,
                "AWS_DEFAULT_REGION": self.region, "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id=self.key, aws_secret_access_key=self.secret)

    def filesystem(self, **kwargs):
        """A new s3fs.S3FileSystem (never fsspec's cached instance)."""
        import s3fs

        client_kwargs = {"endpoint_url": self.endpoint_url, "region_name": self.region}
        return s3fs.S3FileSystem(key=self.key, secret=self.secret, client_kwargs=client_kwargs,
                                 skip_instance_cache=True, **kwargs)

    def start(self) -> None:
        """Start moto on `self.port`; return once it answers HTTP and the bucket exists."""
        argv = [*moto_command(), "-H", self.host, "-p", str(self.port)]
        self.proc = spawn(argv, self.log)
        wait_until(lambda: http_answers(self.endpoint_url + "/moto-api/"), self.proc, self.log,
                   f"moto_server on port {self.port}")
        self.client().create_bucket(Bucket=self.bucket)

    def kill(self) -> None:
        kill_tree(self.proc)
        self.proc = None

    def kill_and_restart(self) -> None:
        """Kill moto, then start it again on the same port. Every object is lost (memory only)."""
        self.kill()
        self.start()

    def reset(self) -> None:
        """Drop all of moto's state without a restart, then re-create the empty bucket."""
        request = urllib.request.Request(self.endpoint_url + "/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        self.client().create_bucket(Bucket=self.bucket)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-compatible HTTP server (moto) on a free loopback port (see S3Server)."""
    server = S3Server(workdir=tmp_path_factory.mktemp("moto").resolve())
    start_on_free_port(server)
    try:
        yield server
    finally:
        server.kill()
