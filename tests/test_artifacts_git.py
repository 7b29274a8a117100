"""Artifacts and git: branches that both log a version merge cleanly, history merges by union,
clones that collide show one add/add conflict, concurrent loggers get distinct versions,
hostile manifests are refused with the file named, and the download cache evicts safely."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import git, ok
from runicorn.core import artifacts as A
from runicorn.core.artifact_cache import DownloadCache, cache_cleanup, default_dir, parse_size
from runicorn.core.repo import Repo
from runicorn.errors import ArtifactManifestError, UsageError


def log(root, name, content: str, aliases=None):
    src = root.parent / f"src-{root.name}.bin"  # outside the work tree: only the manifests go to git
    src.write_text(content)
    art = A.Artifact(name, type="model")
    art.add_file(src, name="model.pth")
    return A.log_artifact(Repo(root), art, aliases=aliases)


def versions(root, name) -> list[int]:
    return [v["version"] for v in A.list_versions(Repo(root), name)]


def test_two_branches_each_log_a_version_and_merge_without_losing_either(tmp_repo):
    log(tmp_repo.root, "m", "base")
    tmp_repo.commit("v1")
    tmp_repo.git("checkout", "-q", "-b", "exp")
    assert log(tmp_repo.root, "m", "experiment", aliases=["candidate"]) == 2
    tmp_repo.commit("exp: v2")
    tmp_repo.git("checkout", "-q", "main")
    # main does not have v2.yaml, but the branch does: the next number skips it
    assert log(tmp_repo.root, "m", "mainline", aliases=["best"]) == 3
    tmp_repo.commit("main: v3")
    tmp_repo.git("merge", "-q", "--no-edit", "exp")  # a real git merge, no conflict
    assert versions(tmp_repo.root, "m") == [1, 2, 3]
    repo = Repo(tmp_repo.root)
    assert A.resolve(repo, "m:candidate") == ("m", 2) and A.resolve(repo, "m:best") == ("m", 3)
    history = (tmp_repo.root / ".runicorn/artifacts/m/history.yaml").read_text()
    assert "candidate" in history and "best" in history and "<<<<<<<" not in history


def test_both_branches_move_the_same_alias_and_the_later_move_wins_after_merge(tmp_repo):
    log(tmp_repo.root, "m", "1")
    log(tmp_repo.root, "m", "2")
    log(tmp_repo.root, "m", "3")
    tmp_repo.commit("three versions")
    tmp_repo.git("checkout", "-q", "-b", "exp")
    ok(tmp_repo.rn("artifacts", "alias", "m:v2", "best"))
    tmp_repo.commit("exp: best = v2")
    tmp_repo.git("checkout", "-q", "main")
    time.sleep(0.01)
    ok(tmp_repo.rn("artifacts", "alias", "m:v3", "best"))
    tmp_repo.commit("main: best = v3")
    tmp_repo.git("merge", "-q", "--no-edit", "exp")
    info = A.artifact_info(Repo(tmp_repo.root), "m:best")
    assert info["version"] == 3  # replayed in time order: main's move came last
    assert [(e["alias"], e["version"]) for e in info["history"]] == [("best", 2), ("best", 3)]


def test_two_clones_that_pick_the_same_number_get_one_add_add_conflict(tmp_repo, tmp_path):
    log(tmp_repo.root, "m", "base")
    tmp_repo.commit("v1")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(tmp_repo.root), str(other))
    assert log(other, "m", "theirs") == 2
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "other: v2")
    assert log(tmp_repo.root, "m", "ours") == 2  # the clones could not know of each other
    tmp_repo.commit("ours: v2")
    tmp_repo.git("pull", "-q", "--no-rebase", "--no-edit", str(other), "main", check=False)
    conflicted = tmp_repo.git("diff", "--name-only", "--diff-filter=U").split()
    assert conflicted == [".runicorn/artifacts/m/v2.yaml"]  # only the manifest, history merged by union
    listing = tmp_repo.rn("artifacts", "list")
    assert listing.code == 1 and "conflict markers" in listing.err and "git checkout --theirs" in listing.err
    # the documented way out: keep theirs as v2, log ours again as the next version
    tmp_repo.git("checkout", "--theirs", ".runicorn/artifacts/m/v2.yaml")
    tmp_repo.commit("merge: keep their v2")
    assert log(tmp_repo.root, "m", "ours") == 3
    assert versions(tmp_repo.root, "m") == [1, 2, 3]


CONCURRENT = """
import sys, time
from pathlib import Path
from runicorn.core import artifacts as A
from runicorn.core.repo import Repo
root, tag, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
src = root / f"src-{tag}.bin"
src.write_text(f"content from {tag}")
art = A.Artifact("shared", type="model")
art.add_file(src, name="model.pth")
while not go.exists():
    time.sleep(0.001)
print(int(A.log_artifact(Repo(root), art)))
"""


def test_two_processes_logging_at_once_get_two_distinct_versions(tmp_repo, tmp_path):
    script = tmp_path / "logger.py"
    script.write_text(CONCURRENT)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_repo.root), tag, str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in ("a", "b", "c")]
    time.sleep(0.5)
    go.touch()
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sorted(int(o.strip()) for o, _ in outs) == [1, 2, 3]
    assert versions(tmp_repo.root, "shared") == [1, 2, 3]
    contents = {A.use_artifact(Repo(tmp_repo.root), f"shared:v{v}").get_path("model.pth").read_text() for v in (1, 2, 3)}
    assert contents == {"content from a", "content from b", "content from c"}


HOSTILE = {
    "dotdot": "- {path: \"../../etc/passwd\", oid: \"%s\", size: 1}\n",
    "absolute": "- {path: \"/etc/passwd\", oid: \"%s\", size: 1}\n",
    "dotgit": "- {path: \".git/hooks/post-checkout\", oid: \"%s\", size: 1}\n",
    "huge": "- {path: \"a\", oid: \"%s\", size: 99999999999999999999999}\n",
}


def _manifest(name: str, files: str) -> str:
    return ("runicorn: 1\nname: %s\nversion: 1\ntype: model\ndigest: sha256:%s\nsize: 1\n"
            "files:\n%sreferences: []\ninputs: []\n" % (name, "0" * 64, files))


@pytest.mark.parametrize("kind", sorted(HOSTILE) + ["bomb", "not-yaml", "wrong-name", "wrong-version", "history"])
def test_hostile_manifests_are_refused_with_the_file_named_and_nothing_written(tmp_repo, kind):
    folder = tmp_repo.root / ".runicorn/artifacts/evil"
    folder.mkdir(parents=True)
    if kind in HOSTILE:
        text = _manifest("evil", HOSTILE[kind] % ("ab" * 32))
    elif kind == "bomb":
        text = "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b]\n"
    elif kind == "not-yaml":
        text = "runicorn: 1\nname: [unclosed\n"
    elif kind == "history":  # a valid manifest, a malformed history
        text = _manifest("evil", "- {path: \"a\", oid: \"%s\", size: 1}\n" % ("ab" * 32))
        (folder / "history.yaml").write_text("- {at: \"2025-01-01\", event: \"alias\", alias: \"x\", version: \"v1\"}\n")
    elif kind == "wrong-name":
        text = _manifest("someone-else", "")
    else:
        text = _manifest("evil", "").replace("version: 1", "version: 2")
    (folder / "v1.yaml").write_text(text)
    before = sorted(p.relative_to(tmp_repo.root) for p in (tmp_repo.root / ".runicorn/artifacts").rglob("*"))
    cached = sorted(p.relative_to(tmp_repo.root) for p in Repo(tmp_repo.root).cache_dir.rglob("*"))
    result = tmp_repo.rn("artifacts", "list")
    bad_file = "history.yaml" if kind == "history" else "v1.yaml"
    assert result.code == 1 and f".runicorn/artifacts/evil/{bad_file}" in result.err
    assert len(result.err.strip().splitlines()) == 1
    with pytest.raises(ArtifactManifestError, match=f"evil/{bad_file}"):
        log(tmp_repo.root, "evil", "new content")
    after = sorted(p.relative_to(tmp_repo.root) for p in (tmp_repo.root / ".runicorn/artifacts").rglob("*"))
    assert after == before  # no manifest, no history, no .gitattributes
    # and no content: the artifact's files are checked before the new content is stored
    assert sorted(p.relative_to(tmp_repo.root) for p in Repo(tmp_repo.root).cache_dir.rglob("*")) == cached
    assert not Repo(tmp_repo.root).odb.exists(hashlib.sha256(b"new content").hexdigest())


def test_download_cache_lists_and_evicts_least_recently_used_but_never_a_linked_download(tmp_repo, tmp_path):
    for name in ("old", "mid", "new"):
        log(tmp_repo.root, name, name * 1000)
    repo = Repo(tmp_repo.root)
    A.use_artifact(repo, "old").download()
    time.sleep(0.01)
    A.use_artifact(repo, "mid").download(target_dir=tmp_path / "service")  # a workspace outside the repo links it
    time.sleep(0.01)
    A.use_artifact(repo, "new").download()
    rows = json.loads(ok(tmp_repo.rn("artifacts", "cache", "list", "--json")).out)
    assert [r["name"] for r in rows] == ["old", "mid", "new"] and [r["linked"] for r in rows] == [False, True, False]
    plan = json.loads(ok(tmp_repo.rn("artifacts", "cache", "cleanup", "--max-size", "1KB", "--dry-run", "--json")).out)
    assert plan["evicted"] == ["old:v1:" + rows[0]["digest"][7:19], "new:v1:" + rows[2]["digest"][7:19]]
    assert len(json.loads(ok(tmp_repo.rn("artifacts", "cache", "list", "--json")).out)) == 3  # dry run
    done = json.loads(ok(tmp_repo.rn("artifacts", "cache", "cleanup", "--max-size", "6KB", "--json")).out)
    assert [k.split(":")[0] for k in done["evicted"]] == ["old"] and done["freed_bytes"] == 3000
    assert [k.split(":")[0] for k in done["kept_linked"]] == []
    assert (tmp_path / "service" / "model.pth").read_text() == "mid" * 1000
    done = cache_cleanup(max_age="0s", config=repo.config)
    assert [k.split(":")[0] for k in done["evicted"]] == ["new"] and [k.split(":")[0] for k in done["kept_linked"]] == ["mid"]
    (tmp_path / "service" / "model.pth").unlink()  # the workspace let go: now it may go
    assert [k.split(":")[0] for k in cache_cleanup(max_age="0s", config=repo.config)["evicted"]] == ["mid"]
    cache = DownloadCache(default_dir(repo.config))
    assert list(cache.odb.iter_oids()) == [] and cache.listing() == []
    assert parse_size("10GB") == 10 * 10**9 and parse_size("1.5GiB") == int(1.5 * 2**30)
    with pytest.raises(UsageError):
        parse_size("ten gigs")
    bad = tmp_repo.rn("artifacts", "cache", "cleanup", "--max-age", "soon")
    assert bad.code == 2 and "--max-age" in bad.err


def test_download_cache_location_follows_the_config(tmp_repo, tmp_path, monkeypatch):
    log(tmp_repo.root, "m", "x")
    monkeypatch.setenv("RUNICORN_ARTIFACTS_CACHE_DIR", str(tmp_path / "elsewhere"))
    folder = A.use_artifact(Repo(tmp_repo.root), "m").download()
    assert str(folder).startswith(str(tmp_path / "elsewhere")) and (folder / "model.pth").read_text() == "x"


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs a second filesystem (/dev/shm)")
def test_download_cache_on_another_filesystem_gets_verified_copies(tmp_repo, tmp_path, monkeypatch):
    import tempfile

    log(tmp_repo.root, "m", "cross-device")
    elsewhere = tempfile.mkdtemp(dir="/dev/shm")
    try:
        monkeypatch.setenv("RUNICORN_ARTIFACTS_CACHE_DIR", elsewhere)
        folder = A.use_artifact(Repo(tmp_repo.root), "m").download()
        assert (folder / "model.pth").read_text() == "cross-device"
        oid = A.artifact_info(Repo(tmp_repo.root), "m")["files"][0]["oid"]
        cached = os.path.join(elsewhere, "objects", oid[:2], oid[2:])
        assert os.stat(cached).st_dev != os.stat(Repo(tmp_repo.root).odb.path(oid)).st_dev
        assert not os.access(folder / "model.pth", os.W_OK) or os.geteuid() == 0
        assert os.stat(folder / "model.pth").st_mode & 0o222 == 0  # read-only link of the cached object
    finally:
        import shutil

        shutil.rmtree(elsewhere, ignore_errors=True)


READER = """
import sys, time
from pathlib import Path
from runicorn.core import artifacts as A
from runicorn.core.repo import Repo
root, stop = Path(sys.argv[1]), Path(sys.argv[2])
reads = 0
while not stop.exists():
    A.list_artifacts(Repo(root))
    A.lineage(Repo(root), "shared") if (root / ".runicorn/artifacts/shared/v1.yaml").exists() else None
    reads += 1
print(reads)
"""

WRITER = """
import sys
from pathlib import Path
from runicorn.core import artifacts as A
from runicorn.core.repo import Repo
root, tag = Path(sys.argv[1]), sys.argv[2]
for i in range(5):
    src = root.parent / f"w-{tag}-{i}.bin"
    src.write_text(f"{tag} {i}")
    art = A.Artifact("shared", type="model")
    art.add_file(src, name="model.pth")
    A.log_artifact(Repo(root), art)
"""


def test_readers_and_writers_at_once_never_fail_and_lose_nothing(tmp_repo, tmp_path):
    (tmp_path / "reader.py").write_text(READER)
    (tmp_path / "writer.py").write_text(WRITER)
    stop = tmp_path / "stop"
    readers = [subprocess.Popen([sys.executable, str(tmp_path / "reader.py"), str(tmp_repo.root), str(stop)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    writers = [subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), str(tmp_repo.root), tag],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    results = [w.communicate(timeout=120) for w in writers]
    stop.touch()
    results += [r.communicate(timeout=60) for r in readers]
    assert all(p.returncode == 0 for p in writers + readers), results
    assert all(int(out) > 0 for out, _ in results[2:])
    assert versions(tmp_repo.root, "shared") == list(range(1, 11))


def test_a_fresh_clone_downloads_a_version_from_the_remote(tmp_repo, tmp_path):
    ok(tmp_repo.rn("remote", "add", "store", str(tmp_path / "remote"), "--default"))
    log(tmp_repo.root, "m", "shared weights", aliases=["best"])
    ok(tmp_repo.rn("artifacts", "push"))
    tmp_repo.commit("model v1")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(tmp_repo.root), str(clone))
    from conftest import TmpRepo

    other = TmpRepo(clone)
    listing = json.loads(ok(other.rn("artifacts", "list", "--json")).out)
    assert [(r["name"], r["latest"], r["aliases"], r["stages"]) for r in listing] == [("m", 1, ["latest", "best"], [])]
    ok(other.rn("artifacts", "download", "m:best", "-o", str(tmp_path / "served")))
    assert (tmp_path / "served" / "model.pth").read_text() == "shared weights"


def test_outside_any_repository_a_downloaded_version_is_served_from_the_download_cache(tmp_repo, tmp_path,
                                                                                          monkeypatch):
    from runicorn.errors import ArtifactNotFoundError

    log(tmp_repo.root, "served", "v1 weights")
    log(tmp_repo.root, "served", "v2 weights")
    for v in (1, 2):
        A.use_artifact(Repo(tmp_repo.root), f"served:v{v}").download()
    service = tmp_path / "inference-service"
    service.mkdir()
    monkeypatch.chdir(service)  # not a git repository, let alone a Runicorn one
    handle = A.use_artifact(None, "served:latest")
    assert handle.version == 2 and handle.get_path("model.pth").read_text() == "v2 weights"
    assert A.use_artifact(None, "served:v1").download(service / "m1") == service / "m1"
    assert (service / "m1" / "model.pth").read_text() == "v1 weights"
    assert handle.verify() and handle.get_metadata().size_bytes == 10 and handle.get_manifest().total_files == 1
    with pytest.raises(ArtifactNotFoundError, match=r"known: served:v1, served:v2"):
        A.use_artifact(None, "served:production")
    # the link made outside the cache pins v1 against cleanup
    assert [k.split(":")[1] for k in cache_cleanup(max_age="0s")["kept_linked"]] == ["v1"]


def test_a_run_outside_any_repository_uses_a_version_from_the_download_cache(tmp_repo, tmp_path):
    """An inference service: `rn.init` outside a repo (user-level run store) + `run.use_artifact`."""
    log(tmp_repo.root, "served", "v1 weights")
    A.use_artifact(Repo(tmp_repo.root), "served:v1").download()  # fills the user-level download cache
    service = tmp_path / "service"
    service.mkdir()
    script = ("import runicorn as rn\n"
              "run = rn.init(project='inference')\n"
              "print(run.use_artifact('served:latest').get_path('model.pth').read_text())\n"
              "print(rn.use_artifact('served:v1').version)\n"
              "rn.finish()\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=service, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["v1", "weights", "1"]
