"""The seed's Artifacts guide, run as written: real training scripts with the real `rn.init`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import yaml

from conftest import ok


def script(repo, code: str, name: str = "train.py") -> str:
    path = repo.root / name
    path.write_text(textwrap.dedent(code))
    done = subprocess.run([sys.executable, str(path)], cwd=repo.root, capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_doc(repo, run_id: str) -> dict:
    return json.loads(ok(repo.rn("runs", "show", run_id, "--json")).out)


def test_quick_start_save_then_use_a_model(tmp_repo):
    tmp_repo.gen({"model.pth": b"\x00weights\x01"})
    out = script(tmp_repo, """
        import runicorn as rn

        run = rn.init(project="image_classification", name="resnet50_v1")
        model = rn.Artifact("resnet50-model", type="model")
        model.add_file("model.pth")
        model.add_metadata({
            "architecture": "ResNet50",
            "val_acc": 0.95,
            "epochs": 100
        })
        version = run.log_artifact(model)  # → v1
        print(f"Saved model: resnet50-model:v{version}")
        print("RUN", run.id)
        rn.finish()
        """)
    assert "Saved model: resnet50-model:v1" in out
    run_id = out.split("RUN ")[1].split()[0]
    manifest = yaml.safe_load((tmp_repo.root / ".runicorn/artifacts/resnet50-model/v1.yaml").read_text())
    assert manifest["created_by"]["run"] == run_id and manifest["metadata"]["val_acc"] == 0.95
    assert run_doc(tmp_repo, run_id)["artifacts"]["logged"][0]["artifact"] == "resnet50-model"
    out = script(tmp_repo, """
        import runicorn as rn

        run = rn.init(project="inference")
        artifact = run.use_artifact("resnet50-model:latest")
        model_path = artifact.download()
        print("BYTES", (model_path / "model.pth").read_bytes())
        print("RUN", run.id)
        rn.finish()
        """, "infer.py")
    assert "BYTES b'\\x00weights\\x01'" in out
    used = run_doc(tmp_repo, out.split("RUN ")[1].split()[0])["artifacts"]["used"]
    assert [(u["artifact"], u["version"]) for u in used] == [("resnet50-model", 1)]


def test_full_feature_tour_from_the_guide(tmp_repo):
    tmp_repo.gen({"model.pth": "m", "checkpoint.pth": "c",
                  "checkpoints": {"e1.pth": "1", "train.log": "log", "x.tmp": "t"}})
    out = script(tmp_repo, """
        import runicorn as rn

        run = rn.init(project="dev", name="tour")
        artifact = rn.Artifact("my-model", type="model")
        artifact.add_file("model.pth")
        artifact.add_file("checkpoint.pth", name="best.pth")
        artifact.add_dir("checkpoints/", exclude_patterns=["*.log", "*.tmp"])
        artifact.add_metadata({
            "architecture": "ResNet50", "val_acc": 0.95, "val_loss": 0.23, "epochs": 100,
            "optimizer": "Adam", "learning_rate": 0.001, "batch_size": 64,
            "notes": "Best model from hyperparameter sweep"
        })
        artifact.add_tags("production", "resnet", "imagenet")
        run.log_artifact(artifact, aliases=["best"])

        dataset = rn.Artifact("imagenet-full", type="dataset")
        dataset.add_reference(
            uri="s3://my-bucket/imagenet-full",
            checksum="sha256:abc123...",
            size=150_000_000_000  # 150 GB
        )
        dataset.add_metadata({"num_samples": 1_281_167, "num_classes": 1000})
        run.log_artifact(dataset)

        for ref in ("my-model:latest", "my-model:v1", "my-model:best"):
            artifact = run.use_artifact(ref)
        model_dir = artifact.download()
        model_file = model_dir / "model.pth"
        print("FILE", model_file.read_text())
        model_dir = artifact.download(target_dir="./models")
        print("LOCAL", sorted(p.name for p in model_dir.rglob("*.pth")))

        metadata = artifact.get_metadata()
        print(f"Accuracy: {metadata.metadata['val_acc']}")
        print(f"Created: {metadata.created_at}")
        print(f"Size: {metadata.size_bytes} bytes")
        manifest = artifact.get_manifest()
        print(f"Files: {manifest.total_files}")
        for file in manifest.files:
            print(f"  {file.path} ({file.size} bytes)")
        print("VERIFY", artifact.verify())
        rn.finish()
        """)
    assert "FILE m" in out and "LOCAL ['best.pth', 'e1.pth', 'model.pth']" in out
    assert "Accuracy: 0.95" in out and "Size: 3 bytes" in out and "Files: 3" in out
    assert "  e1.pth (1 bytes)" in out  # add_dir puts the folder's content at the root and "VERIFY True" in out
    info = json.loads(ok(tmp_repo.rn("artifacts", "info", "imagenet-full", "--json")).out)
    assert info["references"][0]["size"] == 150_000_000_000 and info["metadata"]["num_classes"] == 1000


def test_versioning_with_module_level_calls(tmp_repo):
    tmp_repo.gen({"data_v1.txt": "one", "data_v2.txt": "two"})
    out = script(tmp_repo, """
        import runicorn as rn

        for i in (1, 2):
            rn.init(project="artifact-examples", name=f"data-v{i}")
            art = rn.Artifact("versioned-data", type="dataset")
            art.add_file(f"data_v{i}.txt")
            rn.log_artifact(art)
            rn.finish()
        rn.init(project="artifact-examples", name="use-versioned-data")
        latest = rn.use_artifact("versioned-data:latest")
        v1 = rn.use_artifact("versioned-data:v1")
        print("VERSIONS", latest.version, v1.version)
        rn.finish()
        """)
    assert "VERSIONS 2 1" in out


def test_the_demo_chapter_evaluates_aliases_promotes_and_shows_lineage(tmp_repo):
    from runicorn.core.artifact_demo import registry_story
    from runicorn.core.repo import Repo

    tmp_repo.gen({"models": {"model.pth": "demo weights"}})
    script(tmp_repo, """
        import runicorn as rn
        with rn.init(project="demo", name="train") as run:
            model = rn.Artifact("demo-model", type="model", metadata={"accuracy": 0.98})
            model.add_file("models/model.pth")
            rn.log_artifact(model)
        """)
    lines: list[str] = []
    result = registry_story(Repo(tmp_repo.root), lines.append)
    text = "\n".join(lines)
    assert result == {"version": 1, "edges": 2}
    assert "evaluated demo-model:v1" in text and "demo-model:v1 → evaluate (run " in text
    assert "train (run " in text and "→ demo-model:v1" in text
    info = json.loads(ok(tmp_repo.rn("artifacts", "info", "demo-model:production", "--json")).out)
    assert info["stage"] == "production" and "best" in info["aliases"]


def test_the_guides_troubleshooting_import_check(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import runicorn.artifacts; print('OK')"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "OK", done.stderr
    import runicorn.artifacts as facade

    assert facade.Artifact is __import__("runicorn").Artifact and callable(facade.lineage)


def test_seed_003_log_model_and_use_model_through_the_registry(tmp_repo):
    tmp_repo.gen({"model.pth": "v1", "model2.pth": "v2"})
    out = script(tmp_repo, """
        import runicorn as rn
        from runicorn.artifacts import log_model, use_model

        with rn.init(project="registry", name="train"):
            v1 = log_model("model.pth", "fraud-detector", tags=["xgb"], description="first", stage="production")
            v2 = log_model("model2.pth", "fraud-detector", version="2025-q4", stage="staging")
        with rn.init(project="registry", name="serve") as run:
            prod = use_model("fraud-detector", stage="production")
            staged = use_model("fraud-detector", version=2)
            print("PROD", (prod / "model.pth").read_text(), "STAGED", (staged / "model2.pth").read_text(), v1, v2)
            print("RUN", run.id)
        """, "registry.py")
    assert "PROD v1 STAGED v2 1 2" in out
    info = json.loads(ok(tmp_repo.rn("artifacts", "info", "fraud-detector:staging", "--json")).out)
    assert info["version"] == 2 and info["metadata"] == {"version_label": "2025-q4"} and info["type"] == "model"
    assert [(e["event"], e["stage"], e["version"]) for e in info["history"]] == [
        ("stage", "staging", 1), ("stage", "production", 1), ("stage", "staging", 2)]
    used = run_doc(tmp_repo, out.split("RUN ")[1].split()[0])["artifacts"]["used"]
    assert [(u["artifact"], u["version"]) for u in used] == [("fraud-detector", 1), ("fraud-detector", 2)]


def test_seed_003_example_logs_with_aliases_latest_and_v1(tmp_repo):
    tmp_repo.gen({"data": {"train.csv": "a\n1\n", "test.csv": "a\n2\n", "images": {"0.png": b"\x89PNG"}}})
    out = script(tmp_repo, """
        import runicorn as wandb

        run = wandb.init(project='my-project', name='prepare-data')
        dataset = wandb.Artifact(name='mnist-dataset', type='dataset', description='MNIST training and test data')
        dataset.add_file('data/train.csv')
        dataset.add_file('data/test.csv')
        dataset.add_dir('data/images/')
        print("LOGGED", wandb.log_artifact(dataset, aliases=['latest', 'v1']))
        wandb.finish()

        run = wandb.init(project='my-project', name='train-model')
        dataset = wandb.use_artifact('mnist-dataset:latest')
        data_dir = dataset.download()
        print("TRAIN", open(f'{data_dir}/train.csv').read().splitlines())
        wandb.finish()
        """, "seed003.py")
    assert "LOGGED 1" in out and "TRAIN ['a', '1']" in out
    assert json.loads(ok(tmp_repo.rn("artifacts", "info", "mnist-dataset:v1", "--json")).out)["aliases"] == ["latest"]


def test_seed_keyword_forms_on_the_run_and_the_module(tmp_repo):
    """Seed 001's `use_artifact(name, version=…, alias=…, type=…)` on `run.use_artifact` and
    `rn.use_artifact`: each use is recorded in the run as the version it resolved to."""
    out = script(tmp_repo, """
        import runicorn as rn

        with open("data.csv", "w") as f:
            f.write("a,b\\n")
        with rn.init(project="p", name="v1") as run:
            d = rn.Artifact("table", type="dataset"); d.add_file("data.csv")
            run.log_artifact(d, aliases=["best"])
        with open("data.csv", "a") as f:
            f.write("1,2\\n")
        with rn.init(project="p", name="v2") as run:
            d = rn.Artifact("table", type="dataset"); d.add_file("data.csv")
            run.log_artifact(d)
        with rn.init(project="p", name="reader") as run:
            print("A", run.use_artifact("table", version=1).version)
            print("B", rn.use_artifact("table", alias="best", type="dataset").version)
            print("C", rn.use_artifact("table", version="latest").version)
            try:
                run.use_artifact("table", type="model")
            except Exception as exc:
                print("D", exc)
            print("RUN", run.id)
        """)
    assert "A 1" in out and "B 1" in out and "C 2" in out
    assert "D table:v2 is of type 'dataset', not 'model'" in out
    used = run_doc(tmp_repo, out.split("RUN ")[1].split()[0])["artifacts"]["used"]
    assert sorted((u["artifact"], u["version"]) for u in used) == [("table", 1), ("table", 2)]
