"""Running calls: a fake Twilio call against the in-process app or a server, by script or by hand."""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from ivr.flow import load_flow
from ivr.simulator.expect import check_outcome
from ivr.simulator.fake_twilio import Call, CallResult
from ivr.simulator.script import CallerScript, ScriptError, load_script
from ivr.simulator.script_caller import ScriptedCaller
from ivr.simulator.transcript import Transcript
from ivr.simulator.transport import HttpTransport, InProcessTransport, Transport
from ivr.store import CallStore, MemoryStore

DEFAULT_CALLED = {"cmn-CN": "+861095500000", "en-US": "+15550100000"}


def in_process(flows: list[str | Path], store: CallStore | None = None, token: str | None = None) -> Transport:
    """The app in this process, created with the token the simulator signs with, so signatures are checked."""
    from ivr.twilio import create_app

    token = token or "sim-" + secrets.token_hex(16)
    holder: list = []  # the transport, once made: media timing is judged on the call's virtual clock
    app = create_app([str(f) for f in flows], store=store if store is not None else MemoryStore(),
                     auth_token=token, media_clock=lambda: holder[0].clock.now if holder and getattr(holder[0], "clock", None)
                     else 0.0)
    transport = InProcessTransport(app, token)
    holder.append(transport)
    return transport


class InProcessRun:
    """Many in-process calls in one run: each flow file is loaded once and gets one app, and every app
    shares one store and one token. Apps and flows are the expensive part of a call set up from scratch
    (YAML parsing, validation, the engine); a call itself only costs its webhooks.

    One app per flow *file* (not one app for all flows): two files may hold flows of the same name, e.g.
    a flow and its edited copy. Files are read when first used; the app reloads a file edited on disk
    for new calls, as a served app does.
    """

    def __init__(self, store: CallStore | None = None, token: str | None = None):
        self.store = store if store is not None else MemoryStore()
        self.token = token or "sim-" + secrets.token_hex(16)
        self._flows: dict[Path, object] = {}
        self._transports: dict[Path, Transport] = {}
        self._resolved: dict[str | Path, Path] = {}

    def flow(self, path: str | Path):
        """The loaded flow (ivr.flow.load_flow), read once per run; FlowError as load_flow raises it."""
        key = self._file(path)
        if key not in self._flows:
            self._flows[key] = load_flow(key)
        return self._flows[key]

    def transport(self, path: str | Path) -> Transport:
        key = self._file(path)
        if key not in self._transports:
            self._transports[key] = in_process([key], store=self.store, token=self.token)
        return self._transports[key]

    def _file(self, path: str | Path) -> Path:
        """The file `path` names, resolved once per run (resolving costs a system call per folder)."""
        key = self._resolved.get(path)
        if key is None:
            key = self._resolved[path] = Path(path).resolve()
        return key


def over_http(url: str, token: str) -> Transport:
    return HttpTransport(url, token)


def place_call(transport: Transport, caller, flow_name: str | None = None, caller_id: str = "+8613700000000",
               called: str | None = None, transcript: Transcript | None = None,
               fallback_path: str | None = "/twilio/fallback", voice_path: str | None = None) -> CallResult:
    """One call. With a flow name the call goes to /twilio/voice/<name> (a server may serve several flows).
    `fallback_path` is the number's fallback URL, as the README configures it (None: no fallback URL)."""
    voice_path = voice_path or (f"/twilio/voice/{flow_name}" if flow_name else "/twilio/voice")
    if flow_name and fallback_path == "/twilio/fallback":
        fallback_path = f"/twilio/fallback/{flow_name}"
    call = Call(transport, caller, caller_id=caller_id, called=called or DEFAULT_CALLED["cmn-CN"],
                voice_path=voice_path, transcript=transcript, fallback_path=fallback_path)
    return call.run()


@dataclass
class ScriptOutcome:
    script: str
    rule: str | None
    passed: bool
    failure: str | None
    result: CallResult | None = None
    seconds: float = 0.0  # real time taken
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"script": self.script, "rule": self.rule, "passed": self.passed, "failure": self.failure}
        if self.result is not None:
            out.update(self.result.to_dict())
        return out


def run_script(script: CallerScript | str | Path, transport: Transport | None = None,
               store: CallStore | None = None, run: InProcessRun | None = None) -> ScriptOutcome:
    """Run one caller script: in-process against its flow (default), or through the given transport.

    Pass the same `run` to many calls to load each flow and create each app once (`ivr test`, replay);
    without it the call gets an app of its own (with `store`, or a fresh memory store).
    """
    started = time.monotonic()
    run = run if run is not None else InProcessRun(store)
    try:
        if not isinstance(script, CallerScript):
            script = load_script(script)
        loaded = run.flow(script.flow)
    except ScriptError as exc:
        return ScriptOutcome(str(script), None, False, str(exc))
    except Exception as exc:  # noqa: BLE001 - a broken flow file fails this script, not the whole run
        return ScriptOutcome(script.name, script.rule, False, f"flow {script.flow}: {exc}")
    if transport is None:
        transport = run.transport(script.flow)
    transcript = Transcript()
    caller = ScriptedCaller(script, transcript)
    called = script.called or (loaded.flow.numbers[0] if loaded.flow.numbers else
                               DEFAULT_CALLED.get(loaded.flow.language, DEFAULT_CALLED["cmn-CN"]))
    result = place_call(transport, caller, loaded.flow.name, script.caller, called, transcript)
    failure = judge(script, caller, result)
    return ScriptOutcome(script.name, script.rule, failure is None, failure, result,
                         round(time.monotonic() - started, 3))


def judge(script: CallerScript, caller: ScriptedCaller, result: CallResult) -> str | None:
    """The first thing that did not go as the script says, explained; None when it all did."""
    if result.error:
        return f"the simulator could not go on: {result.error}"
    if result.aborted:
        return result.aborted
    for step in caller.remaining():
        if step.hear is not None:
            problem = caller.matcher.check(step)
            if problem:
                return problem
        elif step.action is not None:
            ended = "we hung up" if result.ended_by == "engine" else "the caller hung up"
            return f"{step.where()}: the call ended at t={result.duration:g}s ({ended}) before this step"
    return check_outcome(script.expect, result)


def find_scripts(paths: list[str | Path]) -> list[Path]:
    """Files as given; directories give their *.yaml caller scripts, sorted."""
    found = []
    for item in paths:
        path = Path(item)
        found += sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    return found
