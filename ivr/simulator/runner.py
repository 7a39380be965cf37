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


def over_http(url: str, token: str) -> Transport:
    return HttpTransport(url, token)


def place_call(transport: Transport, caller, flow_name: str | None = None, caller_id: str = "+8613700000000",
               called: str | None = None, transcript: Transcript | None = None) -> CallResult:
    """One call. With a flow name the call goes to /twilio/voice/<name> (a server may serve several flows)."""
    voice_path = f"/twilio/voice/{flow_name}" if flow_name else "/twilio/voice"
    call = Call(transport, caller, caller_id=caller_id, called=called or DEFAULT_CALLED["cmn-CN"],
                voice_path=voice_path, transcript=transcript)
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
               store: CallStore | None = None) -> ScriptOutcome:
    """Run one caller script: in-process against its flow (default), or through the given transport."""
    started = time.monotonic()
    try:
        if not isinstance(script, CallerScript):
            script = load_script(script)
        loaded = load_flow(script.flow)
    except ScriptError as exc:
        return ScriptOutcome(str(script), None, False, str(exc))
    except Exception as exc:  # noqa: BLE001 - a broken flow file fails this script, not the whole run
        return ScriptOutcome(script.name, script.rule, False, f"flow {script.flow}: {exc}")
    if transport is None:
        transport = in_process([script.flow], store=store)
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
