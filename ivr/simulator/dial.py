"""<Dial><Number|Sip|Client>: a warm transfer. The script (or the person at the keyboard) says how the agent behaves.

Twilio's documented behaviour, as simulated (https://www.twilio.com/docs/voice/twiml/dial):
- `timeout` is 5-600 s (default 30), and Twilio adds a 5 s buffer: the target rings for up to
  `timeout` + 5 s ("a timeout value of 10 seconds could result in an actual timeout closer to
  15 seconds", #timeout); with answerOnBridge the caller keeps hearing ringing until the two are
  connected;
- the party is a <Number>, a <Sip> URI or a <Client> identity (each with `url` for the whisper);
- when the agent answers, the <Number url>'s TwiML runs on the agent's leg (its own
  CallSid, with ParentCallSid = the caller's): the whisper. The two are connected when
  that TwiML ends; if it hangs up, the agent leg ends and the caller is not connected;
- `action` then gets DialCallStatus: completed (the agent's leg was answered, whether or
  not they accepted: a call that was answered and carried audio is `completed` in
  Twilio's call statuses; the app checks acceptance itself), no-answer (rang the full
  timeout), busy, or failed; with DialCallSid and DialCallDuration (seconds of the agent's leg),
  and DialBridged, "true" only when the caller was connected to the party (#action);
- the whisper TwiML (<Number url>) may not hold <Dial> (or Enqueue, Record...): the simulator refuses it;
- without `action`, Twilio goes on with the verb after <Dial>.
"""
from __future__ import annotations

from urllib.parse import urljoin

from ivr.simulator.actions import (TRANSFER, AbortCall, AgentAnswers, AgentDeclines, Busy, Failed, HangUp,
                                   NoAnswer)
from ivr.simulator.outcomes import End, Goto, attr_number
from ivr.simulator.transcript import AGENT, AGENT_HEARS, Line
from ivr.simulator.transport import SimulatorError


def dial(call, el, doc):
    action_url = urljoin(doc.url, el.get("action")) if el.get("action") else None
    method = (el.get("method") or "POST").upper()
    timeout = attr_number(el.get("timeout"), 30.0)
    if not DIAL_TIMEOUT[0] <= timeout <= DIAL_TIMEOUT[1]:
        raise SimulatorError(f"<Dial timeout=\"{el.get('timeout')}\"> in {call.path(doc.url)}: Twilio accepts "
                             f"{DIAL_TIMEOUT[0]}-{DIAL_TIMEOUT[1]} s")
    ringing = timeout + DIAL_BUFFER  # what the caller really waits before no-answer
    time_limit = attr_number(el.get("timeLimit"), 14400.0)
    numbers = [child for child in el if child.tag in PARTIES]
    others = [child.tag for child in el if child.tag not in PARTIES]
    if others:
        raise SimulatorError(f"<Dial><{others[0]}> in {call.path(doc.url)} is not simulated "
                             f"(simulated: {', '.join(PARTIES)})")
    if numbers:
        number, whisper_url = _party(numbers[0]), numbers[0].get("url")
        whisper_method = (numbers[0].get("method") or "POST").upper()
        whisper_url = urljoin(doc.url, whisper_url) if whisper_url else None
    else:
        number, whisper_url, whisper_method = (el.text or "").strip(), None, "POST"
    call.note(f"ringing {number} (up to {ringing:g} s: timeout {timeout:g} s + Twilio's {DIAL_BUFFER} s)")

    agent = call.decide(call.moment(TRANSFER, number=number, timeout=ringing))
    if isinstance(agent, HangUp):
        call.clock.advance(min(agent.after, ringing))
        call.caller_does("hangs up while it rings", "hangup")
        return End("caller")
    params = {}
    if isinstance(agent, NoAnswer):
        call.clock.advance(ringing)
        call.note(f"nobody answered {number} within {ringing:g} s")
        params["DialCallStatus"] = "no-answer"
    elif isinstance(agent, Busy):
        call.note(f"{number} is busy")
        params["DialCallStatus"] = "busy"
    elif isinstance(agent, Failed):
        call.note(f"the call to {number} failed")
        params["DialCallStatus"] = "failed"
    elif isinstance(agent, (AgentAnswers, AgentDeclines)):
        params = _answered(call, agent, number, ringing, time_limit, whisper_url, whisper_method)
    else:
        raise AbortCall(f"when {number} rings the agent answers, declines, does not answer, is busy or the "
                        f"call fails; not {type(agent).__name__}")
    params.setdefault("DialBridged", "false")
    return Goto(action_url, params, method) if action_url else None


PARTIES = ("Number", "Sip", "Client")
DIAL_BUFFER = 5
DIAL_TIMEOUT = (5, 600)
WHISPER_VERBS = ("Say", "Play", "Pause", "Gather", "Hangup", "Reject", "Redirect")


def _party(el) -> str:
    """What is rung, as the flow wrote it: +number, sip:user@host, client:identity."""
    text = (el.text or "").strip()
    return f"client:{text}" if el.tag == "Client" and not text.startswith("client:") else text


def _answered(call, agent, number, timeout, time_limit, whisper_url, whisper_method) -> dict:
    if agent.ring >= timeout:
        call.clock.advance(timeout)
        call.note(f"the agent would answer after {agent.ring:g} s, but <Dial> gives up after {timeout:g} s")
        return {"DialCallStatus": "no-answer"}
    call.clock.advance(agent.ring)
    answered_at = call.clock.now
    leg = call.leg.dialled(number)
    call.note(f"{number} answers", who=AGENT)
    if whisper_url:
        connected = _agent_side(call, leg, call.fetch(whisper_url, leg.params(), whisper_method), agent)
    else:
        connected = isinstance(agent, AgentAnswers)
    if connected:
        talk = min(agent.talk, time_limit) if isinstance(agent, AgentAnswers) else 0.0
        call.note(f"connected: the caller talks with {number} for {talk:g} s")
        call.transferred_to = number
        call.clock.advance(talk)
        call.note(f"{number} hangs up", who=AGENT)
    else:
        call.note(f"{number} hung up without accepting: the caller is not connected")
    return {"DialCallStatus": "completed", "DialCallSid": leg.sid, "DialBridged": "true" if connected else "false",
            "DialCallDuration": str(int(round(call.clock.now - answered_at)))}


def _agent_side(call, leg, doc, agent) -> bool:
    """Run the whisper TwiML on the agent's leg. True when it ends (the legs are bridged), False if it hangs up."""
    key = agent.press
    while doc is not None:
        next_doc = None
        for el in doc.root:
            if el.tag in ("Say", "Play", "Pause"):
                call.hear(el, doc, who=AGENT_HEARS)
            elif el.tag in ("Hangup", "Reject"):
                return False
            elif el.tag == "Redirect":
                next_doc = call.fetch(urljoin(doc.url, (el.text or "").strip() or doc.url), leg.params(),
                                      (el.get("method") or "POST").upper())
                break
            elif el.tag == "Gather":
                next_doc = _agent_gather(call, leg, el, doc, key)
                key = None  # the agent answers one question
                if next_doc is not None:
                    break
            else:
                raise SimulatorError(f"<{el.tag}> in the whisper TwiML {call.path(doc.url)}: the <Number url> TwiML "
                                     f"runs on the agent's leg and may hold only {', '.join(WHISPER_VERBS)} "
                                     "(https://www.twilio.com/docs/voice/twiml/number#url)")
        else:
            return True  # the whisper ran out of verbs: Twilio connects the two
        doc = next_doc
    return True


def _agent_gather(call, leg, el, doc, key):
    for child in el:
        call.hear(child, doc, who=AGENT_HEARS)
    action_url = urljoin(doc.url, el.get("action") or doc.url)
    method = (el.get("method") or "POST").upper()
    timeout = attr_number(el.get("timeout"), 5.0)
    if key:
        call.transcript.add(_agent_line(call, f"presses {key}"))
        return call.fetch(action_url, leg.params(Digits=key), method)
    call.transcript.add(_agent_line(call, f"(silent for {timeout:g} s)"))
    call.clock.advance(timeout)
    if (el.get("actionOnEmptyResult") or "").lower() == "true":
        return call.fetch(action_url, leg.params(), method)
    return None  # Twilio goes on with the next verb of the whisper


def _agent_line(call, text):
    return Line(call.clock.now, AGENT, text, "press")
