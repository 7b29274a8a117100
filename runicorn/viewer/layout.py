"""A layered (Sugiyama-style) layout of a lineage graph, computed on the server and drawn as SVG.

Layers come from the longest path from a source (data flows left to right); the order inside a
layer is improved by a few barycenter sweeps; edges are cubic curves from the right side of a node
to the left side of the next. Cycles (which lineage should never have) are tolerated: a node is
placed once and back edges are still drawn.
"""
from __future__ import annotations

from collections import defaultdict

NODE_W, NODE_H = 180, 44
GAP_X, GAP_Y = 56, 18
MARGIN = 16
SWEEPS = 4


def _layers(ids: list[str], succ: dict[str, list[str]], pred: dict[str, list[str]]) -> dict[str, int]:
    """Longest path from any source, by Kahn's order; nodes left over (cycles) go after their placed parents."""
    indeg = {n: len(pred[n]) for n in ids}
    layer = {n: 0 for n in ids}
    queue = [n for n in ids if indeg[n] == 0]
    placed: set[str] = set()
    while queue:
        node = queue.pop()
        placed.add(node)
        for nxt in succ[node]:
            layer[nxt] = max(layer[nxt], layer[node] + 1)
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                queue.append(nxt)
    for node in ids:  # in a cycle: one past the deepest placed parent
        if node not in placed:
            layer[node] = 1 + max((layer[p] for p in pred[node] if p in placed), default=-1)
    for node in ids:  # a source sits just before its first consumer, not always in column 0
        if not pred[node] and succ[node]:
            layer[node] = max(0, min(layer[t] for t in succ[node]) - 1)
    return layer


def _order(rows: dict[int, list[str]], pred, succ) -> None:
    """Barycenter sweeps, down then up, to reduce crossings (in place)."""
    depth = max(rows) if rows else 0
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        span = range(1, depth + 1) if down else range(depth - 1, -1, -1)
        for level in span:
            ref = rows.get(level - 1 if down else level + 1, [])
            pos = {n: i for i, n in enumerate(ref)}
            neighbours = pred if down else succ

            here = {n: i for i, n in enumerate(rows[level])}

            def center(node, _pos=pos, _nb=neighbours, _here=here):
                near = [_pos[m] for m in _nb[node] if m in _pos]
                return sum(near) / len(near) if near else _here[node]

            rows[level].sort(key=center)


def layout(graph: dict, focus: str | None = None) -> dict:
    """{'width', 'height', 'nodes': [... with x, y, w, h], 'edges': [... with 'd' (SVG path)]}."""
    nodes = {n["id"]: dict(n) for n in graph.get("nodes", [])}
    ids = list(nodes)
    succ: dict[str, list[str]] = defaultdict(list)
    pred: dict[str, list[str]] = defaultdict(list)
    edges = []
    for e in graph.get("edges", []):
        s, t = e.get("source"), e.get("target")
        if s in nodes and t in nodes and s != t and t not in succ[s]:
            succ[s].append(t)
            pred[t].append(s)
            edges.append((s, t))
    layer = _layers(ids, succ, pred)
    rows: dict[int, list[str]] = defaultdict(list)
    for n in ids:
        rows[layer[n]].append(n)
    _order(rows, pred, succ)
    tallest = max((len(r) for r in rows.values()), default=0)
    height = 2 * MARGIN + tallest * NODE_H + max(tallest - 1, 0) * GAP_Y
    for level, row in rows.items():
        used = len(row) * NODE_H + (len(row) - 1) * GAP_Y
        top = MARGIN + (height - 2 * MARGIN - used) / 2
        for i, n in enumerate(row):
            nodes[n].update(x=MARGIN + level * (NODE_W + GAP_X), y=round(top + i * (NODE_H + GAP_Y), 1),
                            w=NODE_W, h=NODE_H, layer=level, focus=(n == focus))
    width = 2 * MARGIN + (max(rows) + 1 if rows else 0) * (NODE_W + GAP_X) - (GAP_X if rows else 0)
    return {"width": max(width, 2 * MARGIN), "height": max(height, 2 * MARGIN),
            "nodes": [nodes[n] for n in ids], "edges": [_edge(nodes[s], nodes[t]) for s, t in edges]}


def _edge(a: dict, b: dict) -> dict:
    x1, y1 = a["x"] + a["w"], a["y"] + a["h"] / 2
    x2, y2 = b["x"], b["y"] + b["h"] / 2
    if x2 <= x1:  # back edge inside a cycle: loop around below
        x1, x2 = a["x"] + a["w"] / 2, b["x"] + b["w"] / 2
        y1, y2 = a["y"] + a["h"], b["y"] + b["h"]
        low = max(y1, y2) + 30
        d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{low:.1f} {x2:.1f},{low:.1f} {x2:.1f},{y2:.1f}"
    else:
        mid = (x1 + x2) / 2
        d = f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    return {"source": a["id"], "target": b["id"], "d": d}
