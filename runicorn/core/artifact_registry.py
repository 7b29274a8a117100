"""The registry rules: aliases and stages as an append-only event history, replayed in time order.

`history.yaml` holds one event per line (alias, unalias, stage, delete, restore, purge), each with
who, when, from which run and commit. The current state is the replay of every event sorted by
time, so two branches that each appended events merge (git's union driver) into one history
whose replay is the same on every clone. "Which version was in production on 3 May" is a replay
that stops at that date (`state_at`).

Stages: none → staging → production → archived. staging and production are held by at most one
version at a time (promoting another moves the old holder: production → archived, staging → none);
archived may hold many. Other aliases are unique per artifact: setting one moves it.
"""
from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone

from runicorn.errors import StageTransitionError

STAGE_NONE = "none"
STAGES = ("staging", "production", "archived")
EXCLUSIVE = ("staging", "production")
ALLOWED = {
    "none": {"staging"},
    "staging": {"production", "archived", "none"},
    "production": {"archived", "staging"},
    "archived": {"staging", "none"},
}


@dataclass
class RegistryState:
    aliases: dict[str, tuple[str, int]] = field(default_factory=dict)  # alias -> ("alias", version)
    stages: dict[int, str] = field(default_factory=dict)  # version -> stage (absent = none)
    purged: set[int] = field(default_factory=set)
    events: list[dict] = field(default_factory=list)

    def stage_holder(self, stage: str) -> int | None:
        held = [v for v, s in self.stages.items() if s == stage]
        return max(held) if held else None

    def rows(self) -> list[tuple[str, str, int]]:
        """(alias or stage name, kind, version) rows for the index."""
        out = [(a, "alias", v) for a, (_, v) in self.aliases.items()]
        out += [(s, "stage", v) for v, s in self.stages.items()]
        return out


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def replay(events: list[dict], present: dict[int, bool], until: str | None = None) -> RegistryState:
    """The state after EVENTS (sorted by time, stable), restricted to versions in PRESENT.

    UNTIL (an ISO time) stops the replay there: the registry as it was at that moment."""
    state = RegistryState()
    ordered = sorted(events, key=lambda e: e["at"])
    for e in ordered:
        if until is not None and e["at"] > until:
            break
        state.events.append(e)
        _apply(state, e)
    for alias, (_, v) in list(state.aliases.items()):
        if v not in present or v in state.purged:
            del state.aliases[alias]
    state.stages = {v: s for v, s in state.stages.items() if v in present and v not in state.purged}
    return state


def _apply(state: RegistryState, e: dict) -> None:
    kind, version = e["event"], e["version"]
    if kind == "alias" and e.get("alias"):
        state.aliases[e["alias"]] = ("alias", version)
    elif kind == "unalias" and e.get("alias"):
        if state.aliases.get(e["alias"], (None, None))[1] == version:
            del state.aliases[e["alias"]]
    elif kind == "stage":
        stage = e.get("stage") or STAGE_NONE
        if stage in EXCLUSIVE:
            for v, s in list(state.stages.items()):
                if s == stage and v != version:
                    del state.stages[v]
        if stage == STAGE_NONE:
            state.stages.pop(version, None)
        elif stage in STAGES:
            state.stages[version] = stage
    elif kind == "purge":
        state.purged.add(version)
        state.stages.pop(version, None)
        for alias, (_, v) in list(state.aliases.items()):
            if v == version:
                del state.aliases[alias]


def check_transition(current: str, target: str, ref: str, force: bool) -> None:
    if target == current or force:
        return
    if target not in ALLOWED.get(current, set()):
        allowed = ", ".join(sorted(ALLOWED[current]))
        raise StageTransitionError(f"{ref} is in stage {current}; it can move to {allowed}, not {target} "
                                   "(stages go none → staging → production → archived); pass --force to move it anyway")


def stage_events(state: RegistryState, version: int, target: str, base: dict) -> list[dict]:
    """The events that put VERSION in stage TARGET, including the displaced holder's move."""
    events = []
    current = state.stages.get(version, STAGE_NONE)
    if target in EXCLUSIVE:
        holder = state.stage_holder(target)
        if holder is not None and holder != version:
            follow = "archived" if target == "production" else STAGE_NONE
            events.append({**base, "event": "stage", "version": holder, "stage": follow, "from": target})
    events.append({**base, "event": "stage", "version": version, "stage": target, "from": current})
    return events
