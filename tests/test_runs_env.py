"""The environment a run records: GPUs (nvidia-smi, torch) and, under `runicorn run`, the interpreter
of the command rather than the wrapper's. No GPU exists on the test machines: stand-ins print what
the real tools print (nvidia-smi) or answer what the real module answers (torch)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import ok
from test_runs import only_run, script

SMI = """#!/bin/sh
if [ "$#" -gt 0 ]; then   # the query: one CSV row per GPU
    echo 'NVIDIA A100-SXM4-40GB, 535.104.05, 40960 MiB'
    echo 'NVIDIA A100-SXM4-40GB, 535.104.05, 40960 MiB'
    exit 0
fi
cat <<'TABLE'
Tue Sep 30 16:45:12 2025
+---------------------------------------------------------------------------------------+
| NVIDIA-SMI 535.104.05             Driver Version: 535.104.05   CUDA Version: 12.2     |
|-----------------------------------------+----------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id        Disp.A | Volatile Uncorr. ECC |
TABLE
"""

TORCH = '''
"""A stand-in for torch with two CUDA devices (no real GPU can exist on the test machine)."""
class version:
    cuda = "12.1"

class cuda:
    @staticmethod
    def is_available():
        return True

    @staticmethod
    def device_count():
        return 2

    @staticmethod
    def get_device_name(i):
        return f"Stand-in GPU {i}"
'''


def _bin(tmp_path: Path, smi: str) -> dict:
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "nvidia-smi").write_text(smi)
    (folder / "nvidia-smi").chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def _torch(tmp_path: Path) -> Path:
    site = tmp_path / "fake-site"
    (site / "torch").mkdir(parents=True)
    (site / "torch" / "__init__.py").write_text(TORCH)
    return site


def test_gpu_from_nvidia_smi_with_the_cuda_version(tmp_repo, tmp_path):
    """A stand-in `nvidia-smi`: the CSV of the query, and the header of its plain output (CUDA Version)."""
    done = script(tmp_repo, "import runicorn as rn\nrn.init()\nrn.finish()\n", env=_bin(tmp_path, SMI))
    assert done.returncode == 0, done.stderr
    gpus = only_run(tmp_repo)["environment"]["gpu"]
    assert gpus == [{"name": "NVIDIA A100-SXM4-40GB", "driver": "535.104.05", "memory": "40960 MiB",
                     "cuda": "12.2", "source": "nvidia-smi"}] * 2


def test_gpu_from_torch_when_the_script_imported_it(tmp_repo, tmp_path):
    """No real GPU or torch here: a stand-in `torch` module on sys.path answers as torch.cuda does,
    and a stand-in `nvidia-smi` that fails sends Runicorn to torch."""
    env = {**_bin(tmp_path, "#!/bin/sh\nexit 9\n"), "PYTHONPATH": str(_torch(tmp_path))}
    done = script(tmp_repo, "import torch\nimport runicorn as rn\nrn.init()\nrn.finish()\n", env=env)
    assert done.returncode == 0, done.stderr
    assert only_run(tmp_repo)["environment"]["gpu"] == [
        {"name": "Stand-in GPU 0", "cuda": "12.1", "source": "torch"},
        {"name": "Stand-in GPU 1", "cuda": "12.1", "source": "torch"}]
    ok(tmp_repo.rn("runs", "delete", "--yes", only_run(tmp_repo)["id"]))
    done = script(tmp_repo, "import runicorn as rn\nrn.init()\nrn.finish()\n", env=env)  # not imported: no torch
    assert done.returncode == 0, done.stderr
    assert "gpu" not in only_run(tmp_repo)["environment"]


def _other_python() -> str:
    """Another interpreter than the one running the tests (the system one), else this one."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate) and os.path.realpath(candidate) != os.path.realpath(sys.executable):
            return candidate
    return sys.executable


def test_runicorn_run_records_the_interpreter_of_the_command(tmp_repo, tmp_path):
    """`runicorn run -- OTHER_PYTHON child.py`: python version, executable and packages are the
    child's (here: a package only the child can see, and the system Python when there is one), and
    the GPUs are the ones the child's torch sees (a stand-in; see above)."""
    python = _other_python()
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    site = _torch(tmp_path)
    (site / "childonlypkg-4.5.6.dist-info").mkdir()
    (site / "childonlypkg-4.5.6.dist-info" / "METADATA").write_text("Name: childonlypkg\nVersion: 4.5.6\n")
    import filelock
    import runicorn
    paths = [str(site), str(Path(runicorn.__file__).parent.parent), str(Path(filelock.__file__).parent.parent)]
    tmp_repo.gen({"child.py": textwrap.dedent("""
        import torch, runicorn as rn
        rn.init()
        rn.log({"loss": 1.0})
        """)})
    done = tmp_repo.rn_proc("run", "--json", "--", "/usr/bin/env", f"PYTHONPATH={os.pathsep.join(paths)}", python,
                            "child.py", env=_bin(tmp_path, "#!/bin/sh\nexit 9\n"))
    assert done.returncode == 0, done.stderr
    env = only_run(tmp_repo)["environment"]
    assert env["python_executable"] == python and env["python"] == version
    assert env["packages"]["childonlypkg"] == "4.5.6"
    assert env["gpu"][0] == {"name": "Stand-in GPU 0", "cuda": "12.1", "source": "torch"}
    wrapper = json.loads(subprocess.run([sys.executable, "-c", "import json, runicorn.core.run_capture as c; "
                                         "print(json.dumps(c.interpreter()['packages']))"],
                                        capture_output=True, text=True, check=True).stdout)
    assert "childonlypkg" not in wrapper  # so the packages did come from the child
