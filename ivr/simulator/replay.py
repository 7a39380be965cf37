"""Replay: rebuild a logged call's caller side, re-drive it against the current flow, diff what they hear.

The call log has every request Twilio sent (Digits, SpeechResult/Confidence, QueueResult and
QueueTime, DialCallStatus, RecordingDuration...) and every TwiML answer. The caller's side
becomes a caller script; it runs in-process against the flow as it is now; the <Say> texts
of the new answers are compared with the logged ones.
"""
from __future__ import annotations

import difflib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ivr.flow import FlowError
from ivr.simulator import actions as act
from ivr.simulator.media import say_text
from ivr.simulator.runner import InProcessRun, place_call
from ivr.simulator.script import CallerScript, Expect, Step
from ivr.simulator.script_caller import ScriptedCaller
from ivr.simulator.transcript import Transcript
from ivr.store import CallStore, MemoryStore

FINAL_STATUSES = {"completed", "canceled", "failed", "busy", "no-answer"}


class ReplayError(Exception):
    """A call that cannot be replayed (not in the store, no flow file...)."""


@dataclass
class Replay:
    call_sid: str
    flow: str
    heard: list[str]
    would_hear: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)
    error: str | None = None
    note: str | None = None  # the re-driven call could not follow the logged caller all the way

    @property
    def differs(self) -> bool:
        return bool(self.diff)

    def to_dict(self) -> dict:
        return {"call_sid": self.call_sid, "flow": self.flow, "differs": self.differs, "error": self.error,
                "note": self.note, "heard": self.heard, "would_hear": self.would_hear, "diff": self.diff}


def heard_in_log(log: list[dict]) -> list[str]:
    """What the caller heard: the <Say> texts of the answers in the call's log, in order."""
    heard = []
    for entry in log:
        if entry.get("kind") != "response":
            continue
        try:
            root = ET.fromstring(entry.get("twiml") or "")
        except ET.ParseError:
            continue
        heard += [say_text(say) for say in root.iter("Say")]
    return heard


def rebuild_script(log: list[dict], flow: Path) -> CallerScript:
    """The caller's side of a logged call, as a script of actions (no expectations)."""
    requests = [e for e in log if e.get("kind") == "request"]
    if not requests:
        raise ReplayError("the call log has no requests")
    first = requests[0].get("params", {})
    accepted = {e.get("turn") for e in log if e.get("fact") == "agent_accepted"}
    actions = []
    for entry in requests:
        if entry.get("path") != "/twilio/event":
            continue
        query, params = entry.get("query", {}), entry.get("params", {})
        action = _caller_action(query.get("k"), params, _int(query.get("t")) in accepted)
        if action is not None:
            actions.append(action)
    caller_hung_up = any(e.get("fact") == "hung_up" and e.get("by") == "caller" for e in log)
    if caller_hung_up and not (actions and _hangs_up(actions[-1])):
        actions.append(act.HangUp())
    steps = [Step(i + 1, 0, f"{type(a).__name__} from the log", action=a, moments=MOMENTS[type(a)])
             for i, a in enumerate(actions)]
    return CallerScript(Path(f"replay of {first.get('CallSid', '?')}"), flow, first.get("From", ""),
                        first.get("To") or None, None, "rebuilt from the call log", steps, Expect())


def _caller_action(kind: str | None, params: dict, accepted: bool):
    if kind == "gather":
        if params.get("Digits"):
            return act.Press(params["Digits"])
        if params.get("SpeechResult"):
            confidence = params.get("Confidence")  # absent when Twilio sent none: replay sends none either
            return act.Speak(params["SpeechResult"], None if confidence is None else _float(confidence))
        return act.HangUp() if params.get("CallStatus") in FINAL_STATUSES else act.Silence()
    if kind == "queue":
        result, waited = params.get("QueueResult"), _float(params.get("QueueTime"))
        if result == "bridged":
            return act.AgentTakes(after=waited)
        if result == "hangup":
            return act.HangUp(after=waited)
        return act.StayOnHold()  # left at the limit (or the queue failed): stay until the hold ends
    if kind == "dial":
        status = params.get("DialCallStatus", "failed")
        if status in ("completed", "answered"):
            talk = _float(params.get("DialCallDuration"))
            return act.AgentAnswers(talk=talk) if accepted else act.AgentDeclines()
        return {"no-answer": act.NoAnswer(), "busy": act.Busy()}.get(status, act.Failed())
    if kind == "record":
        return act.RecordSpeech(_float(params.get("RecordingDuration")), params.get("Digits") or None)
    return None  # a pause ran out: nothing the caller did


MOMENTS = {act.Press: (act.PROMPT, act.RECORD), act.Speak: (act.PROMPT, act.RECORD),
           act.Silence: (act.PROMPT, act.RECORD), act.HangUp: (act.PROMPT, act.RECORD, act.HOLD, act.TRANSFER),
           act.AgentTakes: (act.HOLD,), act.StayOnHold: (act.HOLD,), act.AgentAnswers: (act.TRANSFER,),
           act.AgentDeclines: (act.TRANSFER,), act.NoAnswer: (act.TRANSFER,), act.Busy: (act.TRANSFER,),
           act.Failed: (act.TRANSFER,), act.RecordSpeech: (act.RECORD,)}


def _hangs_up(action) -> bool:
    return isinstance(action, act.HangUp) or (isinstance(action, act.RecordSpeech) and action.then == "hangup")


def _float(value) -> float:
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return 0.0


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class ScratchStore:
    """Where re-driven calls go: never the real call log. Each replayed call gets a fresh memory store for
    its calls and logs (nothing piles up over 10,000 calls, nothing mixes between them), while the flow
    versions the apps pinned at start stay. Everything else is delegated to the current memory store."""

    def __init__(self):
        self.calls = MemoryStore()
        self._flows = MemoryStore()

    def fresh(self) -> None:
        self.calls = MemoryStore()

    def put_flow(self, version, name, path, text):
        self._flows.put_flow(version, name, path, text)

    def get_flow(self, version):
        return self._flows.get_flow(version)

    def __getattr__(self, name):
        return getattr(self.calls, name)


class Replayer:
    """Replays many calls from one store: each flow file is loaded once and gets one in-process app,
    reused for every call replayed against it; the pinned flow version of each call is looked up once."""

    def __init__(self, store: CallStore, flow: str | Path | None = None, context: int = 1):
        self.store, self.flow, self.context = store, Path(flow) if flow else None, context
        self.scratch = ScratchStore()
        self.run = InProcessRun(self.scratch)
        self._versions: dict[str, Path | ReplayError] = {}
        self._names: dict[Path, str | FlowError] = {}

    def _pinned(self, call_sid: str) -> Path:
        """The flow file recorded for the version the call pinned (its current text is what gets replayed)."""
        stored = self.store.load(call_sid)
        version = stored.state.get("flow_version") if stored else None
        if not version:
            raise ReplayError("the store has no flow version for this call; pass --flow FLOW")
        if version not in self._versions:
            flow = self.store.get_flow(version)
            if not flow:
                found = ReplayError("the store has no flow version for this call; pass --flow FLOW")
            elif not Path(flow["path"]).exists():
                found = ReplayError(f"the call's flow file {flow['path']} no longer exists; pass --flow FLOW")
            else:
                found = Path(flow["path"])
            self._versions[version] = found
        found = self._versions[version]
        if isinstance(found, ReplayError):
            raise found
        return found

    def _flow_name(self, path: Path) -> str:
        key = path.resolve()
        if key not in self._names:
            try:
                self._names[key] = self.run.flow(key).flow.name
            except FlowError as exc:
                self._names[key] = exc
        found = self._names[key]
        if isinstance(found, FlowError):
            raise found
        return found

    def replay(self, call_sid: str) -> Replay:
        log = self.store.call_log(call_sid)
        flow = self.flow
        if not log:
            return Replay(call_sid, str(flow or ""), [], error="no such call in the store (no call log)")
        try:
            flow_path = flow if flow else self._pinned(call_sid)
            script = rebuild_script(log, flow_path)
        except ReplayError as exc:
            return Replay(call_sid, str(flow or ""), heard_in_log(log), error=str(exc))
        try:
            name = self._flow_name(flow_path)
        except FlowError as exc:
            return Replay(call_sid, str(flow_path), heard_in_log(log), error=f"the flow does not load:\n{exc}")
        self.scratch.fresh()  # the re-driven call is not mixed into the real call log, nor with other replays
        transcript = Transcript()
        result = place_call(self.run.transport(flow_path), ScriptedCaller(script, transcript), name,
                            script.caller, script.called, transcript)
        replay = Replay(call_sid, str(flow_path), heard_in_log(log),
                        heard_in_log(self.scratch.call_log(result.call_sid)), error=result.error, note=result.aborted)
        replay.diff = list(difflib.unified_diff(replay.heard, replay.would_hear, fromfile=f"{call_sid} heard",
                                                tofile=f"{call_sid} would hear now ({flow_path})", n=self.context,
                                                lineterm=""))
        return replay


def replay_call(store: CallStore, call_sid: str, flow: str | Path | None = None, context: int = 1) -> Replay:
    """One call; to replay many, use one Replayer (flows and apps are then set up once)."""
    return Replayer(store, flow, context).replay(call_sid)


# --- many calls, on several cores --------------------------------------------------------------

_WORKER_REPLAYERS: dict = {}


def _replay_chunk(job) -> list[Replay]:
    """In a worker process: its own store connection and one Replayer for all the chunks it gets."""
    store_url, flow, context, sids = job
    key = (store_url, flow, context)
    if key not in _WORKER_REPLAYERS:
        from ivr.store import open_store

        _WORKER_REPLAYERS[key] = Replayer(open_store(store_url), flow, context)
    replayer = _WORKER_REPLAYERS[key]
    return [replayer.replay(sid) for sid in sids]


def replay_many(store: CallStore, store_url: str, sids: list[str], flow: str | Path | None = None,
                context: int = 1, jobs: int = 1, done=lambda n: None):
    """Replay `sids` in order, yielding each Replay; `done(n)` after each n calls (a progress bar).

    jobs > 1: the calls are split into chunks replayed by that many worker processes, each with its
    own connection to the store at `store_url` and its own apps (each flow loaded once per worker);
    results come back in the order of `sids`, the same as replaying them here one after another."""
    if jobs <= 1 or len(sids) < 2:
        replayer = Replayer(store, flow, context)
        for sid in sids:
            replay = replayer.replay(sid)
            done(1)
            yield replay
        return
    from ivr.simulator.workers import chunked, in_workers

    chunks = [(store_url, str(flow) if flow else None, context, part) for part in chunked(sids, jobs)]
    for replays in in_workers(_replay_chunk, chunks, jobs):
        done(len(replays))
        yield from replays
