"""Lineage: which runs used which artifact versions and tracked data, and what they produced.

Nodes are `artifact:NAME:vN`, `run:RUN_ID` and `data:PATH@OID12`; edges point the way data
flows (input → run → output). Edges come from the manifests (a version's producing run and that
run's inputs) and from `use_artifact` calls (artifact → consuming run). Output versions are always
created after their inputs, and a run's use of a version it produced itself is not recorded, so
the graph has no cycles; the walk also keeps a visited set and a depth limit.
"""
from __future__ import annotations

import json

from runicorn.core import artifact_index as aindex
from runicorn.core.artifact_read import open_repo, resolve
from runicorn.errors import ArtifactNameError, ArtifactNotFoundError, UsageError

FORMATS = ("text", "json", "dot", "mermaid")
MAX_RUN_LOOKUPS = 200


def _start(repo, ref: str) -> str:
    if ref.startswith("run:"):
        if not ref[4:] or any(c in ref for c in "\n\r\t"):
            raise ArtifactNameError(f"{ref!r} is not a run reference; use run:RUN_ID")
        _check_run(repo, ref[4:])
        return ref
    if ref.startswith("data:"):
        return ref
    name, version = resolve(repo, ref, include_deleted=True)
    return aindex.node_artifact(name, version)


def _check_run(repo, run_id: str) -> None:
    """RUN_ID is a run folder here or a run the lineage index knows (e.g. one that logged a version in
    another clone); otherwise an error listing the known runs, newest first."""
    db = repo.index.db
    node = aindex.node_run(run_id)
    if db.execute("SELECT 1 FROM art_edges WHERE source = ? OR target = ? LIMIT 1", (node, node)).fetchone():
        return
    from runicorn.core import runs  # runs build on artifacts: imported late

    here = runs.store_of(repo).run_ids()
    if run_id in here:
        return
    graph = [n[4:] for (n,) in db.execute("SELECT source FROM art_edges WHERE source LIKE 'run:%' "
                                          "UNION SELECT target FROM art_edges WHERE target LIKE 'run:%'")]
    raise ArtifactNotFoundError(f"run {run_id!r}", sorted({*here, *graph}, reverse=True),
                                "see `runicorn runs list` (or `runicorn pull --runs` for runs made elsewhere)")


def _walk(db, start: str, up: bool, down: bool, depth: int) -> tuple[set[str], set[tuple[str, str]]]:
    nodes, edges = {start}, set()
    for direction in ([("target", "source")] if up else []) + ([("source", "target")] if down else []):
        here, other = direction
        frontier = {start}
        seen = {start}
        for _ in range(depth):
            if not frontier:
                break
            found = set()
            marks = ",".join("?" * len(frontier))
            for s, t in db.execute(f"SELECT DISTINCT source, target FROM art_edges WHERE {here} IN ({marks})",  # noqa: S608
                                   sorted(frontier)):
                edges.add((s, t))
                nxt = s if here == "target" else t
                if nxt not in seen:
                    seen.add(nxt)
                    found.add(nxt)
            nodes |= found
            frontier = found
    return nodes, edges


def _describe(repo, db, node: str, runs_api) -> dict:
    kind = node.split(":", 1)[0]
    out = {"id": node, "kind": kind, "label": node.split(":", 1)[1]}
    if kind == "artifact":
        name, _, v = node[len("artifact:"):].rpartition(":")
        out.update(name=name, version=int(v[1:]), label=f"{name}:{v}")
        row = db.execute("SELECT type, created_at, deleted FROM art_versions WHERE name = ? AND version = ?",
                         (name, int(v[1:]))).fetchone()
        if row:
            out.update(type=row[0], created_at=row[1], deleted=bool(row[2]))
        else:
            out.update(missing=True)
    elif kind == "run":
        out["run_id"] = node[4:]
        if runs_api is not None:
            try:
                doc = runs_api.get_run(repo, node[4:])
            except Exception:  # noqa: BLE001 — a run record we cannot read only loses its label
                doc = None
            if isinstance(doc, dict):
                out.update(name=doc.get("name"), project=doc.get("project"), status=doc.get("status"))
                if doc.get("name"):
                    out["label"] = doc["name"]
    elif kind == "data":
        path, _, oid = node[5:].rpartition("@")
        out.update(path=path, oid=oid, label=f"{path}@{oid}")
    return out


def lineage(repo, ref: str, up: bool = True, down: bool = True, depth: int = 5) -> dict:
    """The graph around REF (an artifact ref, `run:RUN_ID` or `data:PATH@OID12`), DEPTH hops each way."""
    if type(depth) is not int or depth < 1:
        raise UsageError(f"lineage depth must be 1 or more (the hops to follow each way), not {depth!r}")
    repo = open_repo(repo)
    aindex.sync(repo)
    start = _start(repo, ref)
    db = repo.index.db
    nodes, edges = _walk(db, start, up, down, depth)
    from runicorn.core import runs as runs_api  # runs build on artifacts: imported late

    run_nodes = [n for n in nodes if n.startswith("run:")]
    api = runs_api if len(run_nodes) <= MAX_RUN_LOOKUPS else None
    described = [_describe(repo, db, n, api) for n in sorted(nodes)]
    return {"root": start, "nodes": described,
            "edges": [{"source": s, "target": t} for s, t in sorted(edges)]}


# -- renderings ------------------------------------------------------------------------------------
def _order(graph: dict) -> list[str]:
    """Nodes in data-flow order (inputs first); ties by id."""
    incoming = {n["id"]: 0 for n in graph["nodes"]}
    following: dict[str, list[str]] = {}
    for e in graph["edges"]:
        incoming[e["target"]] = incoming.get(e["target"], 0) + 1
        following.setdefault(e["source"], []).append(e["target"])
    ready = sorted((n for n, k in incoming.items() if k == 0), reverse=True)
    out: list[str] = []
    while ready:
        n = ready.pop()
        out.append(n)
        for m in sorted(following.get(n, []), reverse=True):
            incoming[m] -= 1
            if incoming[m] == 0:
                ready.append(m)
    placed = set(out)
    return out + sorted(n for n in incoming if n not in placed)


def render(graph: dict, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ArtifactNameError(f"unknown lineage format {fmt!r}; use one of {', '.join(FORMATS)}")
    labels = {n["id"]: n["label"] for n in graph["nodes"]}
    if fmt == "json":
        return json.dumps(graph, indent=2, sort_keys=True)
    if fmt == "dot":
        lines = ["digraph lineage {", "  rankdir=LR;"]
        shapes = {"artifact": "box", "run": "ellipse", "data": "folder"}
        for n in graph["nodes"]:
            lines.append(f"  {json.dumps(n['id'])} [label={json.dumps(n['label'])}, shape={shapes.get(n['kind'], 'box')}];")
        lines += [f"  {json.dumps(e['source'])} -> {json.dumps(e['target'])};" for e in graph["edges"]]
        return "\n".join(lines + ["}"])
    if fmt == "mermaid":
        ids = {n: f"n{i}" for i, n in enumerate(_order(graph))}
        lines = ["graph LR"]
        for n in graph["nodes"]:
            text = n["label"].replace('"', "'")
            shape = f'(["{text}"])' if n["kind"] == "run" else f'["{text}"]'
            lines.append(f"  {ids[n['id']]}{shape}")
        lines += [f"  {ids[e['source']]} --> {ids[e['target']]}" for e in graph["edges"]]
        return "\n".join(lines)
    lines = [f"lineage of {labels.get(graph['root'], graph['root'])}"]
    if not graph["edges"]:
        lines.append("  (no recorded inputs or uses)")
    outgoing: dict[str, list[str]] = {}
    for e in graph["edges"]:
        outgoing.setdefault(e["source"], []).append(e["target"])
    for n in _order(graph):
        for target in sorted(outgoing.get(n, [])):
            lines.append(f"  {_text_label(labels, n)} → {_text_label(labels, target)}")
    return "\n".join(lines)


def _text_label(labels: dict, node: str) -> str:
    label = labels.get(node, node)
    if node.startswith("run:") and label != node[4:]:
        return f"{label} (run {node[4:]})"
    return label if not node.startswith("run:") else f"run {label}"
