"""A call's state between two webhooks: small, plain and JSON-serialisable."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CallState:
    flow: str  # flow name
    flow_version: str  # content hash pinned at call start
    caller: str = ""
    called: str = ""
    step: str = ""
    phase: str | None = None  # the step machine's state
    listen_phase: str | None = None  # the listening ladder's state
    misses: dict = field(default_factory=dict)  # ladder -> misses in this step
    variables: dict = field(default_factory=dict)
    last_said: list = field(default_factory=list)  # what the caller heard before the last listen (E7)
    accepted_by: str | None = None  # the agent's call that accepted the transfer in progress (E10)
    turn: int = 0  # events handled; action URLs carry it so a duplicate is recognised
    ended: bool = False

    def to_dict(self) -> dict:
        # not dataclasses.asdict: it deep-copies recursively, a measurable share of a webhook
        out = {name: getattr(self, name) for name in _FIELDS}
        out["misses"], out["variables"], out["last_said"] = dict(self.misses), dict(self.variables), list(self.last_said)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "CallState":
        return cls(**{k: data[k] for k in _FIELDS if k in data})


_FIELDS = tuple(CallState.__dataclass_fields__)
