"""Artifacts without a run: logging, dedup, manifests in git, registry, delete, diff, download, verify, CLI."""
from __future__ import annotations

import hashlib
import json
import os

import pytest
import yaml

from conftest import ok
from runicorn.core import artifacts as A
from runicorn.core.repo import Repo
from runicorn.errors import ArtifactNameError, ArtifactNotFoundError, RunicornError, StageTransitionError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def log(repo, name, files: dict, kind="model", aliases=None, **meta):
    """Write FILES under art-src/<name>/ and log them as NAME."""
    src = repo.root / "art-src" / name
    src.mkdir(parents=True, exist_ok=True)
    art = A.Artifact(name, type=kind, metadata=meta or None)
    for rel, content in files.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        art.add_file(path, name=rel)
    return A.log_artifact(Repo(repo.root), art, aliases=aliases)


def objects(repo) -> set[str]:
    return set(Repo(repo.root).odb.iter_oids())


def test_log_writes_a_manifest_in_git_and_content_in_the_cache(tmp_repo):
    tmp_repo.gen({"model.pth": b"weights-1", "ckpt": {"a.bin": b"A", "sub": {"b.bin": b"B"}, "x.tmp": b"tmp"}})
    art = A.Artifact("resnet50-model", type="model", description="first", metadata={"arch": "ResNet50"})
    art.add_file(tmp_repo.root / "model.pth")
    art.add_dir(tmp_repo.root / "ckpt", name="ckpt", exclude_patterns=["*.tmp"])
    art.add_tags("resnet", "baseline")
    version = A.log_artifact(Repo(tmp_repo.root), art, aliases=["best"])
    assert version == 1 and f"resnet50-model:v{version}" == "resnet50-model:v1" and version.created
    manifest = tmp_repo.root / ".runicorn/artifacts/resnet50-model/v1.yaml"
    doc = yaml.safe_load(manifest.read_text())  # plain YAML any tool can read
    assert doc["name"] == "resnet50-model" and doc["version"] == 1 and doc["type"] == "model"
    assert {f["path"]: f["oid"] for f in doc["files"]} == {
        "model.pth": sha(b"weights-1"), "ckpt/a.bin": sha(b"A"), "ckpt/sub/b.bin": sha(b"B")}
    assert doc["metadata"] == {"arch": "ResNet50"} and doc["tags"] == ["resnet", "baseline"]
    assert doc["digest"].startswith("sha256:") and doc["deleted"] is False
    assert doc["created_by"]["commit"] == tmp_repo.git("rev-parse", "HEAD").strip()
    for f in doc["files"]:
        assert f["oid"] in objects(tmp_repo)
    # the workspace file is untouched (still writable: a training loop may overwrite it)
    assert os.access(tmp_repo.root / "model.pth", os.W_OK)
    # git sees the manifest and the history as files to commit; .gitattributes merges history by union
    status = tmp_repo.git("status", "--porcelain", "--untracked-files=all")
    assert ".runicorn/artifacts/resnet50-model/v1.yaml" in status
    assert ".runicorn/artifacts/resnet50-model/history.yaml" in status
    assert tmp_repo.git("check-attr", "merge", ".runicorn/artifacts/resnet50-model/history.yaml").strip().endswith("union")


def test_identical_content_creates_no_new_version_and_shared_files_are_stored_once(tmp_repo):
    v1 = log(tmp_repo, "data-set", {"a.txt": "same", "b.txt": "one"}, kind="dataset")
    before = objects(tmp_repo)
    again = log(tmp_repo, "data-set", {"a.txt": "same", "b.txt": "one"}, kind="dataset")
    assert again == v1 and not again.created and objects(tmp_repo) == before
    v2 = log(tmp_repo, "data-set", {"a.txt": "same", "b.txt": "two"}, kind="dataset")
    assert v2 == 2
    assert objects(tmp_repo) - before == {sha(b"two")}  # only the changed file was added
    stats = A.artifact_stats(Repo(tmp_repo.root))
    assert stats["total_versions"] == 2 and stats["files_size"] == 14 and stats["pool_size"] == 10
    assert stats["space_saved"] == 4 and stats["dedup_ratio"] == round(4 / 14, 4)
    assert stats["by_type"] == {"dataset": {"artifacts": 1, "versions": 2, "size": 14}}


def test_references_are_recorded_with_uri_checksum_and_size(tmp_repo):
    tmp_repo.gen({"ext.bin": b"external"})
    art = A.Artifact("imagenet-full", type="dataset")
    art.add_reference(uri="s3://my-bucket/imagenet-full", checksum="sha256:abc123...", size=150_000_000_000)
    art.add_reference(str(tmp_repo.root / "ext.bin"), name="local-ext")
    A.log_artifact(Repo(tmp_repo.root), art)
    info = A.artifact_info(Repo(tmp_repo.root), "imagenet-full")
    refs = {r["name"]: r for r in info["references"]}
    assert refs["imagenet-full"] == {"name": "imagenet-full", "uri": "s3://my-bucket/imagenet-full",
                                     "checksum": "sha256:abc123...", "size": 150_000_000_000}
    assert refs["local-ext"]["checksum"] == "sha256:" + sha(b"external") and refs["local-ext"]["size"] == 8
    assert info["size"] == 150_000_000_008


def test_verify_names_a_reference_whose_checksum_no_longer_matches(tmp_repo):
    tmp_repo.gen({"ext.bin": b"external", "m.pth": b"m"})
    art = A.Artifact("refd", type="dataset")
    art.add_file(tmp_repo.root / "m.pth")
    art.add_reference("file://" + str(tmp_repo.root / "ext.bin"), name="ext")
    A.log_artifact(Repo(tmp_repo.root), art)
    assert A.use_artifact(Repo(tmp_repo.root), "refd").verify()
    ok(tmp_repo.rn("artifacts", "verify", "refd"))
    (tmp_repo.root / "ext.bin").write_bytes(b"tampered")
    result = tmp_repo.rn("artifacts", "verify", "refd:v1")
    assert result.code == 5 and "reference ext" in result.err and "does not match" in result.err
    assert not A.use_artifact(Repo(tmp_repo.root), "refd").verify()


def test_names_types_aliases_and_sources_are_validated(tmp_repo):
    for bad in ("", "a/b", "../x", "has space", "x" * 200, "-lead", "v.yaml"):
        with pytest.raises(ArtifactNameError):
            A.Artifact(bad, type="model")
    with pytest.raises(ArtifactNameError):
        A.Artifact("ok-name", type="no spaces allowed")
    assert A.Artifact("ok", type="my_custom-type").type == "my_custom-type"
    art = A.Artifact("ok", type="model")
    with pytest.raises(FileNotFoundError):
        art.add_file(tmp_repo.root / "nope.pth")
    with pytest.raises(ArtifactNameError):
        art.add_metadata({"x": object()})
    tmp_repo.gen({"f": "x"})
    with pytest.raises(ArtifactNameError):
        art.add_file(tmp_repo.root / "f", name="../escape")
    art.add_file(tmp_repo.root / "f")
    before = objects(tmp_repo)
    for bad in ("production", "none", "v3", "3", "bad alias"):
        with pytest.raises(ArtifactNameError):
            A.log_artifact(Repo(tmp_repo.root), art, aliases=[bad])
    assert not (tmp_repo.root / ".runicorn/artifacts/ok").exists()  # nothing written
    assert objects(tmp_repo) == before  # not even the content (a wrong vN is caught before storing)


def test_resolve_versions_aliases_and_errors_list_what_exists(tmp_repo):
    log(tmp_repo, "m", {"w": "1"}, aliases=["best"])
    log(tmp_repo, "m", {"w": "2"})
    repo = Repo(tmp_repo.root)
    assert A.resolve(repo, "m") == ("m", 2) and A.resolve(repo, "m:latest") == ("m", 2)
    assert A.resolve(repo, "m:v1") == ("m", 1) and A.resolve(repo, "m:1") == ("m", 1)
    assert A.resolve(repo, "m:best") == ("m", 1)
    with pytest.raises(ArtifactNotFoundError, match=r"m:v9 does not exist \(known: v1, v2, best, latest\)"):
        A.resolve(repo, "m:v9")
    with pytest.raises(ArtifactNotFoundError, match=r"artifact 'other' does not exist \(known: m\)"):
        A.resolve(repo, "other:v1")
    result = tmp_repo.rn("artifacts", "info", "m:nope")
    assert result.code == 1 and "known: v1, v2, best, latest" in result.err


def test_aliases_move_and_keep_their_history(tmp_repo):
    log(tmp_repo, "m", {"w": "1"}, aliases=["best"])
    log(tmp_repo, "m", {"w": "2"})
    ok(tmp_repo.rn("artifacts", "alias", "m:v2", "best"))
    repo = Repo(tmp_repo.root)
    assert A.resolve(repo, "m:best") == ("m", 2)
    rows = {v["version"]: v for v in A.list_versions(repo, "m")}
    assert rows[1]["aliases"] == [] and rows[2]["aliases"] == ["latest", "best"]
    history = A.artifact_info(repo, "m")["history"]
    assert [(e["event"], e["alias"], e["version"], e["previous"]) for e in history] == [
        ("alias", "best", 1, None), ("alias", "best", 2, 1)]
    assert all(e["by"] and e["commit"] for e in history)
    ok(tmp_repo.rn("artifacts", "alias", "m:v2", "best", "--remove"))
    with pytest.raises(ArtifactNotFoundError):
        A.resolve(repo, "m:best")


def test_stages_follow_the_rules_and_answer_what_was_in_production_on_a_date(tmp_repo):
    for i in range(3):
        log(tmp_repo, "clf", {"w": str(i)})
    bad = tmp_repo.rn("artifacts", "stage", "clf:v1", "production")
    assert bad.code == 2 and "none → staging → production → archived" in bad.err
    ok(tmp_repo.rn("artifacts", "stage", "clf:v1", "staging"))
    ok(tmp_repo.rn("artifacts", "stage", "clf:v1", "production"))
    repo = Repo(tmp_repo.root)
    before_v2 = A.artifact_info(repo, "clf:production")["history"][-1]["at"]
    ok(tmp_repo.rn("artifacts", "stage", "clf:v2", "staging"))
    moved = json.loads(ok(tmp_repo.rn("artifacts", "stage", "clf:v2", "production", "--json")).out)
    assert moved["moves"] == [{"version": 1, "from": "production", "to": "archived"},
                              {"version": 2, "from": "staging", "to": "production"}]
    assert A.resolve(repo, "clf:production") == ("clf", 2) and A.resolve(repo, "clf:archived") == ("clf", 1)
    assert A.registry_at(repo, "clf", before_v2)["stages"] == {"production": 1}
    assert A.registry_at(repo, "clf", "2000-01-01")["stages"] == {}
    assert A.registry_at(repo, "clf", "2999-01-01")["stages"] == {"production": 2, "archived": [1]}
    ok(tmp_repo.rn("artifacts", "stage", "clf:v3", "production", "--force"))
    assert A.resolve(repo, "clf:production") == ("clf", 3)
    with pytest.raises(StageTransitionError):
        A.set_stage(repo, "clf:v1", "production")


def test_soft_delete_restore_and_permanent_delete_never_reuse_numbers(tmp_repo):
    log(tmp_repo, "old-model", {"w": "1"})
    log(tmp_repo, "old-model", {"w": "2"})
    result = ok(tmp_repo.rn("artifacts", "--action", "delete", "--name", "old-model", "--version", "1"))
    assert "Soft deleted old-model:v1" in result.out
    repo = Repo(tmp_repo.root)
    assert yaml.safe_load((tmp_repo.root / ".runicorn/artifacts/old-model/v1.yaml").read_text())["deleted"] is True
    with pytest.raises(ArtifactNotFoundError, match="soft-deleted"):
        A.resolve(repo, "old-model:v1")
    ok(tmp_repo.rn("artifacts", "restore", "old-model:v1"))
    assert A.resolve(repo, "old-model:v1") == ("old-model", 1)
    refused = tmp_repo.rn("artifacts", "delete", "old-model:v2", "--permanent")  # no terminal, no --yes
    assert refused.code == 2 and "--yes" in refused.err
    assert (tmp_repo.root / ".runicorn/artifacts/old-model/v2.yaml").exists()
    ok(tmp_repo.rn("artifacts", "--action", "delete", "--name", "old-model", "--version", "2", "--permanent", "--yes"))
    assert not (tmp_repo.root / ".runicorn/artifacts/old-model/v2.yaml").exists()
    assert log(tmp_repo, "old-model", {"w": "3"}) == 3  # v2 is never handed out again
    repo.index.db.execute("DELETE FROM art_max")  # even when the index forgets: the history keeps the purge
    assert log(tmp_repo, "old-model", {"w": "4"}) == 4


def test_diff_shows_files_and_metadata_changes(tmp_repo):
    log(tmp_repo, "m", {"a": "1", "b": "2", "c": "3"}, acc=0.9, lr=0.1)
    log(tmp_repo, "m", {"a": "1", "b": "22", "d": "4"}, acc=0.95, epochs=3)
    d = A.artifact_diff(Repo(tmp_repo.root), "m:v1", "v2")
    assert [f["path"] for f in d["files"]["added"]] == ["d"] and [f["path"] for f in d["files"]["removed"]] == ["c"]
    assert [f["path"] for f in d["files"]["changed"]] == ["b"] and d["files"]["unchanged"] == 1
    assert d["metadata"] == {"added": {"epochs": 3}, "removed": {"lr": 0.1}, "changed": {"acc": [0.9, 0.95]}}
    text = ok(tmp_repo.rn("artifacts", "diff", "m:v1", "m:v2")).out
    assert "added    d" in text and "removed  c" in text and "changed  b" in text and "acc: 0.9 -> 0.95" in text


def test_download_links_from_the_cache_and_get_path(tmp_repo, tmp_path):
    log(tmp_repo, "m", {"model.pth": "weights", "cfg/c.json": "{}"})
    handle = A.use_artifact(Repo(tmp_repo.root), "m:latest")
    folder = handle.download()
    assert (folder / "model.pth").read_text() == "weights" and (folder / "cfg/c.json").read_text() == "{}"
    assert handle.get_path("cfg/c.json") == folder / "cfg/c.json"
    assert str(folder).startswith(str(tmp_path.parent))  # the isolated HOME's cache, not the real one
    inside = handle.download(tmp_repo.root / "models")
    obj = Repo(tmp_repo.root).odb.path(sha(b"weights"))
    assert os.stat(inside / "model.pth").st_ino == os.stat(obj).st_ino  # linked, not copied
    out = tmp_path / "service"
    result = json.loads(ok(tmp_repo.rn("artifacts", "download", "m:v1", "-o", str(out), "--json")).out)
    assert result["path"] == str(out) and (out / "model.pth").read_text() == "weights"
    with pytest.raises(ArtifactNotFoundError, match="model.pth"):
        handle.get_path("nope.txt")
    meta = handle.get_metadata()
    assert meta.size_bytes == 9 and meta.created_at and meta.aliases == ["latest"]
    manifest = handle.get_manifest()
    assert manifest.total_files == 2 and {f.path: f.size for f in manifest.files} == {"model.pth": 7, "cfg/c.json": 2}


def test_download_fetches_missing_objects_from_the_default_remote(tmp_repo, tmp_path):
    log(tmp_repo, "m", {"model.pth": "remote weights"})
    ok(tmp_repo.rn("remote", "add", "store", str(tmp_path / "remote"), "--default"))
    pushed = json.loads(ok(tmp_repo.rn("artifacts", "push", "--json")).out)
    assert pushed["transferred"] == 1
    repo = Repo(tmp_repo.root)
    oid = sha(b"remote weights")
    os.chmod(repo.odb.path(oid), 0o644)
    os.unlink(repo.odb.path(oid))  # as in a fresh clone: the manifest is here, the object is not
    out = tmp_path / "out"
    ok(tmp_repo.rn("artifacts", "download", "m", "-o", str(out)))
    assert (out / "model.pth").read_text() == "remote weights" and repo.odb.exists(oid)


def test_push_sends_artifact_files_and_skips_versions_this_clone_never_downloaded(tmp_repo, tmp_path):
    log(tmp_repo, "m", {"model.pth": "pushed with the data"})
    ok(tmp_repo.rn("remote", "add", "store", str(tmp_path / "remote"), "--default"))
    first = json.loads(ok(tmp_repo.rn("push", "--json")).out)
    oid = sha(b"pushed with the data")
    stored = tmp_path / "remote" / "objects" / oid[:2] / oid[2:]
    assert first["transferred"] == 1 and stored.read_bytes() == b"pushed with the data"
    assert json.loads(ok(tmp_repo.rn("push", "--json")).out)["transferred"] == 0
    repo = Repo(tmp_repo.root)
    os.chmod(repo.odb.path(oid), 0o644)
    os.unlink(repo.odb.path(oid))  # as in a clone that only has the manifest
    again = json.loads(ok(tmp_repo.rn("push", "--json")).out)
    assert again["missing"] == [] and again["transferred"] == 0


def test_download_without_the_object_or_a_remote_says_what_to_do(tmp_repo, tmp_path):
    log(tmp_repo, "m", {"model.pth": "w"})
    repo = Repo(tmp_repo.root)
    os.unlink(repo.odb.path(sha(b"w")))
    result = tmp_repo.rn("artifacts", "download", "m", "-o", str(tmp_path / "o"))
    assert result.code == 1 and "missing" in result.err and "no remote is configured" in result.err
    assert not (tmp_path / "o" / "model.pth").exists()


def test_cli_list_versions_info_stats_and_the_seed_spelling(tmp_repo):
    log(tmp_repo, "resnet50-model", {"model.pth": "x" * 1000}, architecture="ResNet50", val_acc=0.95)
    log(tmp_repo, "resnet50-model", {"model.pth": "y" * 1000}, aliases=["production-candidate"])
    log(tmp_repo, "imagenet-subset", {"d.bin": "z"}, kind="dataset")
    listing = ok(tmp_repo.rn("artifacts", "--action", "list")).out
    assert "Found 2 artifact(s):" in listing and "resnet50-model" in listing and "imagenet-subset" in listing
    for header in ("Name", "Type", "Versions", "Size", "Latest"):
        assert header in listing
    rows = json.loads(ok(tmp_repo.rn("artifacts", "list", "--json")).out)
    assert [(r["name"], r["type"], r["versions"], r["latest"]) for r in rows] == [
        ("imagenet-subset", "dataset", 1, 1), ("resnet50-model", "model", 2, 2)]
    assert [r["name"] for r in json.loads(ok(tmp_repo.rn("artifacts", "list", "--type", "dataset", "--json")).out)] == [
        "imagenet-subset"]
    versions = ok(tmp_repo.rn("artifacts", "--action", "versions", "--name", "resnet50-model")).out
    assert "Versions for resnet50-model:" in versions and "v1" in versions and "v2" in versions
    info = ok(tmp_repo.rn("artifacts", "--action", "info", "--name", "resnet50-model", "--version", "1")).out
    assert "Artifact: resnet50-model:v1" in info and "architecture: ResNet50" in info and "model.pth" in info
    assert json.loads(ok(tmp_repo.rn("artifacts", "info", "resnet50-model:v2", "--json")).out)["aliases"] == [
        "latest", "production-candidate"]
    stats = ok(tmp_repo.rn("artifacts", "--action", "stats")).out
    for line in ("Total Artifacts:  2", "Total Versions:   3", "Dedup Enabled:    True", "Dedup Ratio:", "By Type:"):
        assert line in stats
    bad = tmp_repo.rn("artifacts", "--action", "explode")
    assert bad.code == 2 and "--action must be one of" in bad.err


def test_gc_keeps_artifact_objects_until_the_version_is_gone(tmp_repo):
    log(tmp_repo, "m", {"w": "keep me"})
    oid = sha(b"keep me")
    ok(tmp_repo.rn("gc", "--yes", "--workspace"))
    assert oid in objects(tmp_repo)
    ok(tmp_repo.rn("artifacts", "delete", "m:v1", "--permanent", "--yes"))
    ok(tmp_repo.rn("gc", "--yes", "--workspace"))
    assert oid not in objects(tmp_repo)


def test_index_is_rebuilt_from_the_yaml(tmp_repo):
    log(tmp_repo, "m", {"w": "1"}, aliases=["best"])
    log(tmp_repo, "m", {"w": "2"})
    repo = Repo(tmp_repo.root)
    before = A.list_artifacts(repo)
    with repo.index.write() as w:
        for table in ("art_artifacts", "art_versions", "art_aliases", "art_objects"):
            w.execute(f"DELETE FROM {table}")
        w.execute("INSERT INTO art_artifacts VALUES ('ghost', 'model', 'x', NULL)")
    summary = A.rebuild_index(repo)
    assert summary["artifacts"] == 1 and summary["versions"] == 2
    assert A.list_artifacts(repo) == before


def test_the_index_follows_git_checkout_of_another_branch(tmp_repo):
    log(tmp_repo, "m", {"w": "1"})
    tmp_repo.commit("v1")
    tmp_repo.git("checkout", "-q", "-b", "exp")
    log(tmp_repo, "m", {"w": "2"})
    tmp_repo.commit("v2")
    repo = Repo(tmp_repo.root)
    assert [r["latest"] for r in A.list_artifacts(repo)] == [2]
    tmp_repo.git("checkout", "-q", "main")
    assert [r["latest"] for r in A.list_artifacts(repo)] == [1]
    assert A.list_versions(repo, "m")[-1]["version"] == 1


def test_the_cli_as_a_real_process(tmp_repo):
    log(tmp_repo, "proc-model", {"w": "1"})
    done = tmp_repo.rn_proc("artifacts", "--action", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert [r["name"] for r in json.loads(done.stdout)] == ["proc-model"]
    done = tmp_repo.rn_proc("artifacts", "versions", "nope")
    assert done.returncode == 1 and done.stderr.startswith("error: artifact 'nope' does not exist (known: proc-model)")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_logged_artifact_reads_back_and_the_seeds_cache_object_works(tmp_repo):
    tmp_repo.gen({"model.pth": "abc"})
    art = A.Artifact("sample-model", type="model", metadata={"accuracy": 0.92})
    with pytest.raises(ArtifactNameError, match="not been logged yet"):
        art.verify()
    art.add_file(tmp_repo.root / "model.pth")
    A.log_artifact(Repo(tmp_repo.root), art)
    assert art.verify() and art.get_metadata().metadata == {"accuracy": 0.92}
    assert art.get_manifest().total_files == 1 and art.get_path("model.pth").read_text() == "abc"
    cache = A.ArtifactCache()
    assert [e["name"] for e in cache.list()] == ["sample-model"]
    assert cache.cleanup(max_size_gb=0.0, max_age_days=7)["evicted"] and cache.list() == []


def test_autostage_stages_manifests_history_and_deletions(tmp_repo):
    ok(tmp_repo.rn("config", "set", "core.autostage", "true"))
    log(tmp_repo, "staged", {"w": "1"}, aliases=["best"])
    staged = set(tmp_repo.git("diff", "--cached", "--name-only").split())
    assert {".runicorn/artifacts/.gitattributes", ".runicorn/artifacts/staged/v1.yaml",
            ".runicorn/artifacts/staged/history.yaml"} <= staged
    tmp_repo.git("commit", "-q", "-m", "v1")
    ok(tmp_repo.rn("artifacts", "delete", "staged:v1", "--permanent", "--yes"))
    status = tmp_repo.git("status", "--porcelain")
    assert "D  .runicorn/artifacts/staged/v1.yaml" in status and "M  .runicorn/artifacts/staged/history.yaml" in status


def test_a_name_that_is_both_file_and_folder_is_refused_before_anything_is_stored(tmp_repo):
    tmp_repo.gen({"x": "file", "d": {"y": "inner"}})
    art = A.Artifact("clash", type="model")
    art.add_file(tmp_repo.root / "x")
    art.add_dir(tmp_repo.root / "d", name="x")
    before = objects(tmp_repo)
    with pytest.raises(ArtifactNameError, match="both a file and a folder"):
        A.log_artifact(Repo(tmp_repo.root), art)
    assert objects(tmp_repo) == before and not (tmp_repo.root / ".runicorn/artifacts/clash").exists()


def test_the_seed_spelling_takes_numbers_versions_aliases_and_stages(tmp_repo):
    log(tmp_repo, "m", {"w": "1"}, aliases=["best"])
    log(tmp_repo, "m", {"w": "2"})
    for spelled, expected in (("1", 1), ("v1", 1), ("best", 1), ("latest", 2)):
        out = ok(tmp_repo.rn("artifacts", "--action", "info", "--name", "m", "--version", spelled, "--json")).out
        assert json.loads(out)["version"] == expected
    assert json.loads(ok(tmp_repo.rn("artifacts", "--action", "info", "--name", "m", "--json")).out)["version"] == 2
    missing = tmp_repo.rn("artifacts", "--action", "versions")
    assert missing.code == 2 and "--name" in missing.err


def test_info_at_a_date_shows_the_registry_as_it_was(tmp_repo):
    log(tmp_repo, "clf", {"w": "1"})
    log(tmp_repo, "clf", {"w": "2"})
    ok(tmp_repo.rn("artifacts", "stage", "clf:v1", "staging"))
    ok(tmp_repo.rn("artifacts", "stage", "clf:v1", "production"))
    moment = A.artifact_info(Repo(tmp_repo.root), "clf")["history"][-1]["at"]
    ok(tmp_repo.rn("artifacts", "stage", "clf:v2", "staging"))
    ok(tmp_repo.rn("artifacts", "stage", "clf:v2", "production"))
    then = ok(tmp_repo.rn("artifacts", "info", "clf", "--at", moment)).out
    assert "stage production: v1" in then and "v2" not in then
    now = json.loads(ok(tmp_repo.rn("artifacts", "info", "clf", "--at", "2999-12-31", "--json")).out)
    assert now["stages"] == {"production": 2, "archived": [1]}
    assert "no aliases or stages yet" in ok(tmp_repo.rn("artifacts", "info", "clf", "--at", "1999-01-01")).out
    bad = tmp_repo.rn("artifacts", "info", "clf", "--at", "last tuesday")
    assert bad.code == 2 and "--at" in bad.err


def test_verify_finds_a_corrupt_or_missing_cached_file(tmp_repo):
    log(tmp_repo, "m", {"a.bin": "good", "b.bin": "also good"})
    repo = Repo(tmp_repo.root)
    path = repo.odb.path(sha(b"good"))
    os.chmod(path, 0o644)
    with open(path, "w") as f:
        f.write("evil")
    os.unlink(repo.odb.path(sha(b"also good")))
    result = tmp_repo.rn("artifacts", "verify", "m", "--json")
    assert result.code == 5
    report = json.loads(result.out)
    assert report["ok"] is False and len(report["problems"]) == 2
    assert "a.bin: cached content does not match" in result.err and "b.bin: object" in result.err


def test_tables_keep_one_row_per_line_however_long(tmp_repo):
    aliases = ["a-long-alias-name-number-one", "a-long-alias-name-number-two", "a-long-alias-name-number-three"]
    log(tmp_repo, "m", {"w": "1"}, aliases=aliases)
    rows = [line for line in ok(tmp_repo.rn("artifacts", "versions", "m")).out.splitlines() if line.startswith("v1 ")]
    assert len(rows) == 1 and all(a in rows[0] for a in aliases) and rows[0].rstrip().endswith("none")
    assert len(rows[0]) > 120


def test_latest_and_the_versions_own_number_are_accepted_as_aliases_a_conflicting_number_is_not(tmp_repo):
    # seed 003: log_artifact(dataset, aliases=['latest', 'v1'])
    assert log(tmp_repo, "mnist", {"train.csv": "1"}, kind="dataset", aliases=["latest", "v1"]) == 1
    repo = Repo(tmp_repo.root)
    assert [v["aliases"] for v in A.list_versions(repo, "mnist")] == [["latest"]]
    assert not (tmp_repo.root / ".runicorn/artifacts/mnist/history.yaml").exists()  # nothing to record
    again = log(tmp_repo, "mnist", {"train.csv": "1"}, kind="dataset", aliases=["latest", "1", "best"])
    assert again == 1 and not again.created and A.resolve(repo, "mnist:best") == ("mnist", 1)
    before = objects(tmp_repo)
    with pytest.raises(ArtifactNameError, match=r"aliases list 'v1', but this content would become the new "
                                                r"version mnist:v2: version numbers are assigned"):
        log(tmp_repo, "mnist", {"train.csv": "2"}, kind="dataset", aliases=["latest", "v1"])
    assert objects(tmp_repo) == before and [v["version"] for v in A.list_versions(repo, "mnist")] == [1]
    with pytest.raises(ArtifactNameError, match=r"'v2', but this content is already the latest version, mnist:v1"):
        log(tmp_repo, "mnist", {"train.csv": "1"}, kind="dataset", aliases=["v2"])
    assert log(tmp_repo, "mnist", {"train.csv": "2"}, kind="dataset", aliases=["latest", "v2"]) == 2


def test_an_alias_that_looks_like_a_version_number_is_refused(tmp_repo):
    log(tmp_repo, "m", {"w": "1"})
    log(tmp_repo, "m", {"w": "2"})
    for alias in ("3", "v3", "V3", "007"):
        bad = tmp_repo.rn("artifacts", "alias", "m:v2", alias)
        assert bad.code == 2 and f"alias {alias!r} looks like a version number" in bad.err and "e.g. best" in bad.err
    assert not (tmp_repo.root / ".runicorn/artifacts/m/history.yaml").exists()
    ok(tmp_repo.rn("artifacts", "alias", "m:v2", "v3-candidate"))  # a word with digits is fine
    assert A.resolve(Repo(tmp_repo.root), "m:v3-candidate") == ("m", 2)


def test_relogging_the_latest_content_returns_it_and_older_content_becomes_the_new_latest(tmp_repo):
    v1 = log(tmp_repo, "m", {"w": "A"})
    v2 = log(tmp_repo, "m", {"w": "B"})
    assert (v1, v2) == (1, 2)
    same = log(tmp_repo, "m", {"w": "B"})
    assert same == 2 and not same.created
    before = objects(tmp_repo)
    back = log(tmp_repo, "m", {"w": "A"})  # a revert: the user expects latest to be A again
    assert back == 3 and back.created and back.digest == v1.digest
    assert objects(tmp_repo) == before  # the bytes were already stored: nothing added
    repo = Repo(tmp_repo.root)
    assert A.resolve(repo, "m:latest") == ("m", 3)
    assert A.use_artifact(repo, "m:latest").get_path("w").read_text() == "A"
    # a soft-deleted latest is not "the current latest": its content logged again is a new version
    ok(tmp_repo.rn("artifacts", "delete", "m:v3"))
    assert log(tmp_repo, "m", {"w": "A"}) == 4


def test_same_content_with_new_metadata_warns_that_the_metadata_was_not_recorded(tmp_repo):
    from runicorn.core.run_live import RunicornWarning

    log(tmp_repo, "m", {"w": "1"}, acc=0.9)
    with pytest.warns(RunicornWarning, match=r"m:v1 already holds this content, so it was returned and the new "
                                             r"metadata was not recorded.*soft-delete m:v1") as caught:
        again = log(tmp_repo, "m", {"w": "1"}, acc=0.95)
    assert again == 1 and not again.created and len(caught) == 1
    assert A.artifact_info(Repo(tmp_repo.root), "m:v1")["metadata"] == {"acc": 0.9}  # unchanged
    src = tmp_repo.root / "art-src/m/w"
    art = A.Artifact("m", type="dataset", description="new words")
    art.add_file(src)
    art.add_tags("fresh")
    with pytest.warns(RunicornWarning, match=r"new type 'dataset', description, tags were not recorded"):
        A.log_artifact(Repo(tmp_repo.root), art)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same (or no) metadata again: silent
        log(tmp_repo, "m", {"w": "1"}, acc=0.9)
        log(tmp_repo, "m", {"w": "1"})


def test_soft_delete_never_asks_and_a_permanent_one_asks_or_needs_yes(tmp_repo, monkeypatch):
    from runicorn import cli_artifacts

    log(tmp_repo, "m", {"w": "1"})
    log(tmp_repo, "m", {"w": "2"})
    asked: list[str] = []
    monkeypatch.setattr(cli_artifacts, "interactive", lambda: True)  # a person at a terminal
    monkeypatch.setattr(cli_artifacts.CliReporter, "confirm", lambda self, question: asked.append(question) or False)
    assert "Soft deleted m:v1" in ok(tmp_repo.rn("artifacts", "delete", "m:v1")).out and asked == []
    ok(tmp_repo.rn("artifacts", "restore", "m:v1"))
    declined = tmp_repo.rn("artifacts", "delete", "m:v2", "--permanent")
    assert declined.code == 2 and "cancelled" in declined.err and asked == ["Permanently delete m:v2?"]
    monkeypatch.setattr(cli_artifacts, "interactive", lambda: False)  # CI=true / no terminal
    assert "Soft deleted m:v1" in ok(tmp_repo.rn("artifacts", "delete", "m:v1")).out and len(asked) == 1
    refused = tmp_repo.rn("artifacts", "delete", "m:v2", "--permanent")
    assert refused.code == 2 and "rerun with --yes" in refused.err and len(asked) == 1
    assert (tmp_repo.root / ".runicorn/artifacts/m/v2.yaml").exists()


def test_the_seed_001_api_shapes(tmp_repo, tmp_path):
    import runicorn as rn

    log(tmp_repo, "sample-dataset", {"train.csv": "a,b\n"}, kind="dataset", aliases=["best"])
    log(tmp_repo, "sample-dataset", {"train.csv": "a,b\n1,2\n"}, kind="dataset")
    repo = Repo(tmp_repo.root)
    use = A.use_artifact
    assert use(repo, "sample-dataset", version=1).version == 1 and use(repo, "sample-dataset", version="v2").version == 2
    assert use(repo, "sample-dataset", version="latest").version == 2
    assert use(repo, "sample-dataset", alias="best", type="dataset").version == 1
    with pytest.raises(ArtifactNameError, match=r"sample-dataset:v2 is of type 'dataset', not 'model'"):
        use(repo, "sample-dataset", type="model")
    for bad in ({"version": 1, "alias": "best"}, {"version": 1, "ref": "sample-dataset:v2"}):
        with pytest.raises(RunicornError, match="give one of them|already names a version"):
            use(repo, bad.pop("ref", "sample-dataset"), **bad)
    handle = use(repo, "sample-dataset:v1")
    folder = handle.download(root=tmp_path / "out")  # the seed's download(root=...)
    assert folder == tmp_path / "out" and (folder / "train.csv").read_text() == "a,b\n"
    assert rn.ArtifactCache is A.ArtifactCache
    cache = rn.ArtifactCache()
    assert cache.get("sample-dataset", "v1") is not None  # downloaded outside the repository: in the cache
    assert open(os.path.join(cache.get("sample-dataset", 1), "train.csv")).read() == "a,b\n"
    assert cache.get("sample-dataset", "latest") == cache.get("sample-dataset", "v1")  # the highest downloaded
    assert cache.get("sample-dataset", "v2") is None and cache.get("never-downloaded", "v1") is None
    assert rn.ArtifactCache(cache_dir=cache.root).root == cache.root


def test_list_shows_aliases_and_stages_in_their_own_columns(tmp_repo):
    log(tmp_repo, "clf", {"w": "1"}, aliases=["best"])
    log(tmp_repo, "clf", {"w": "2"})
    ok(tmp_repo.rn("artifacts", "stage", "clf:v1", "staging"))
    ok(tmp_repo.rn("artifacts", "stage", "clf:v1", "production"))
    ok(tmp_repo.rn("artifacts", "stage", "clf:v2", "staging"))
    log(tmp_repo, "plain", {"w": "x"})
    lines = ok(tmp_repo.rn("artifacts", "list")).out.splitlines()
    header = next(line for line in lines if line.startswith("Name"))
    assert header.split() == ["Name", "Type", "Versions", "Size", "Latest", "Aliases", "Stage"]
    clf = next(line for line in lines if line.startswith("clf "))
    assert clf.index("latest, best") < header.index("Stage") <= clf.index("staging, production")
    assert next(line for line in lines if line.startswith("plain ")).split()[-2:] == ["latest", "none"]
    rows = {r["name"]: r for r in json.loads(ok(tmp_repo.rn("artifacts", "list", "--json")).out)}
    assert rows["clf"]["aliases"] == ["latest", "best"] and rows["clf"]["stages"] == ["staging", "production"]
    assert rows["plain"]["aliases"] == ["latest"] and rows["plain"]["stages"] == []
