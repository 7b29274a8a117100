"""What rn.log does with the values it is given: bad ones cost only themselves, the summary follows
every call, integer-like steps. Real training processes, real files, real SQLite."""
from __future__ import annotations

import json

from test_runs import only_run, script

ONE_BAD_VALUE = """
import runicorn as rn

class Broken:
    def __float__(self):
        raise RuntimeError("device lost")

run = rn.init()
rn.log({"huge": 10**400, "loss": 0.5}, step=0)       # float(10**400) raises OverflowError
rn.log({"bad": Broken(), "acc": 0.9}, step=1)        # __float__ raises RuntimeError
rn.log({"loss": 0.25, "nested": {"huge": 10**400, "ok": 1}}, step=2)
rn.finish()
print("finished")
"""


def test_one_bad_value_drops_only_its_key(tmp_repo):
    done = script(tmp_repo, ONE_BAD_VALUE)
    assert done.returncode == 0, done.stderr
    assert "finished" in done.stdout
    assert "metric 'huge' cannot be stored as a number (OverflowError" in done.stderr
    assert "metric 'bad' cannot be stored as a number (RuntimeError: device lost)" in done.stderr
    assert "metric 'nested/huge' cannot be stored" in done.stderr
    doc = only_run(tmp_repo)
    folder = tmp_repo.root / ".runicorn" / "runs" / doc["id"]
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["values"]) for r in records] == [
        (0, {"loss": 0.5}), (1, {"acc": 0.9}), (2, {"loss": 0.25, "nested/ok": 1})]
    assert sorted(doc["metric_keys"]) == ["acc", "loss", "nested/ok"]
    assert doc["summary"] == {"loss": 0.25, "acc": 0.9, "nested/ok": 1}


def test_records_wait_in_memory_while_the_metrics_log_cannot_be_written(tmp_repo):
    """metrics.jsonl is made a directory for a while (a write that fails, as a full disk would):
    the records logged meanwhile are written by a later flush, in order, none twice."""
    done = script(tmp_repo, """
        import os, time, runicorn as rn
        run = rn.init()
        os.mkdir(run.dir / "metrics.jsonl")
        for step in range(5):
            rn.log({"loss": step})
        time.sleep(2.5)                       # two flushes fail
        os.rmdir(run.dir / "metrics.jsonl")
        for step in range(5, 10):
            rn.log({"loss": step})
        rn.finish()
        """)
    assert done.returncode == 0, done.stderr
    assert "Runicorn flush failed (IsADirectoryError" in done.stderr
    doc = only_run(tmp_repo)
    lines = (tmp_repo.root / ".runicorn" / "runs" / doc["id"] / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(10))
    assert doc["summary"]["loss"] == 9


def test_summary_follows_each_log_call_before_any_flush(tmp_repo):
    done = script(tmp_repo, """
        import runicorn as rn
        run = rn.init()
        rn.log({"loss": 0.5, "train": {"acc": 0.8}})
        print("loss", run.summary["loss"])             # no flush has run yet
        print("nested", run.summary["train/acc"])
        rn.log({"loss": 0.25})
        print("again", run.summary["loss"], "loss" in run.summary, sorted(run.summary))
        run.summary["loss"] = 0.1                       # what you set wins
        print("set", run.summary["loss"])
        rn.log({"text": "not a number"})
        print("text" in run.summary)
        rn.finish()
        """)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out == ["loss 0.5", "nested 0.8", "again 0.25 True ['loss', 'train/acc']", "set 0.1", "False"]
    assert only_run(tmp_repo)["summary"] == {"loss": 0.1, "train/acc": 0.8}


def test_integer_like_steps_are_accepted_but_not_bools(tmp_repo):
    done = script(tmp_repo, """
        import runicorn as rn

        class Step:                                     # what numpy.int64 and 0-d integer tensors offer
            def __init__(self, n):
                self.n = n
            def __index__(self):
                return self.n

        class BadStep:
            def __index__(self):
                raise ValueError("no")

        rn.init()
        rn.log({"loss": 1.0}, step=Step(3))
        rn.log({"loss": 2.0}, step=True)
        rn.log({"loss": 3.0}, step=BadStep())
        rn.log({"loss": 4.0}, step=2.0)
        rn.log({"loss": 5.0})                          # auto step follows the __index__ one: 4
        rn.finish()
        """)
    assert done.returncode == 0, done.stderr
    assert "step must be an integer, not True" in done.stderr
    assert "step must be an integer, not <" in done.stderr and "step must be an integer, not 2.0" in done.stderr
    doc = only_run(tmp_repo)
    lines = (tmp_repo.root / ".runicorn" / "runs" / doc["id"] / "metrics.jsonl").read_text().splitlines()
    assert [(json.loads(line)["step"], json.loads(line)["values"]["loss"]) for line in lines] == [(3, 1.0), (4, 5.0)]
