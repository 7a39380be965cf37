"""Engine actions -> TwiML, with the twilio library's VoiceResponse (no hand-built XML).

Action URLs are relative: Twilio resolves them against the URL it just
requested, so any host behind the load balancer can serve the next webhook.
Each carries the call's turn (`t`), which is how a duplicate delivery is told
from a new event.
"""
from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlencode

from twilio.twiml.voice_response import Dial, Enqueue, Gather, Say, VoiceResponse

from ivr.engine import actions as act
from ivr.flow.model import Flow

WHISPER_ACCEPT_WAIT = 10  # seconds the agent has to press the key after the whisper
_TURN_MARK, _CALL_MARK = "t=TURNxMARK", "parent=CALLxMARK"  # filled in per call by Renderer.render
RENDERED_KEPT = 2048  # distinct turns' TwiML kept per flow version
DIAL_BUFFER = 5  # Twilio adds 5 s to a <Dial timeout> ("a timeout value of 10 seconds could result in an
# actual timeout closer to 15 seconds"): https://www.twilio.com/docs/voice/twiml/dial#timeout
DIAL_TIMEOUT = (5, 600)  # the values Twilio accepts for <Dial timeout>, same page


def dial_timeout(ring_limit: float) -> int:
    """The <Dial timeout> that makes the caller wait at most `ring_limit` s: the promise less Twilio's buffer."""
    return int(min(max(DIAL_TIMEOUT[0], round(ring_limit) - DIAL_BUFFER), DIAL_TIMEOUT[1]))


def dial_target(dial: Dial, to: str, **attrs) -> None:
    """The noun for a transfer target: <Sip> for sip:, <Client> for client:, else <Number>
    (https://www.twilio.com/docs/voice/twiml/sip, .../client, .../number; each takes url and method)."""
    if to.startswith(("sip:", "sips:")):
        dial.sip(to, **attrs)
    elif to.startswith("client:"):
        dial.client(to.removeprefix("client:"), **attrs)
    else:
        dial.number(to, **attrs)

SPEECH_LANGUAGE = {"cmn-CN": "cmn-Hans-CN", "en-US": "en-US"}


def url(path: str, **params) -> str:
    return f"{path}?{urlencode(params)}" if params else path


class Renderer:
    def __init__(self, flow: Flow, base_url: str = ""):
        self.flow = flow
        self.base = base_url.rstrip("/")
        self.say_attrs = {"language": flow.language}
        if flow.voice:
            self.say_attrs["voice"] = flow.voice
        self.speech_language = flow.speech_language or SPEECH_LANGUAGE.get(flow.language, flow.language)
        louder = flow.etiquette.repeat_louder
        self.prosody = {"rate": louder.rate, "volume": louder.volume}
        self._template = lru_cache(maxsize=RENDERED_KEPT)(self._render)

    def link(self, path: str, **params) -> str:
        return self.base + url(path, **params)

    def event_url(self, kind: str, turn: int) -> str:
        return self.link("/twilio/event", k=kind, t=turn)

    def say_plain(self, text: str) -> Say:
        return Say(text, **self.say_attrs)

    def say(self, action: act.Say) -> Say:
        say = Say(**self.say_attrs) if action.louder else Say(action.text, **self.say_attrs)
        if action.louder:  # E7: louder and a little slower, with SSML prosody
            say.prosody(action.text, **self.prosody)
        return say

    def render(self, actions: list, call_sid: str, turn: int) -> str:
        """The TwiML of a turn. The same actions always make the same TwiML but for the call and turn
        in its URLs, so it is rendered once per distinct list of actions and then filled in."""
        template = self._template(tuple(actions))
        return template.replace(_TURN_MARK, f"t={turn}").replace(_CALL_MARK, f"parent={call_sid}")

    def _render(self, actions: tuple) -> str:
        """Each action as Twilio's reference documents the verb it becomes:
        - Listen: <Gather input="dtmf speech"> with the prompts nested, so the caller may answer over
          them (Gather nests Say, Play and Pause); actionOnEmptyResult makes Twilio request the action
          URL after a silent window too (https://www.twilio.com/docs/voice/twiml/gather);
        - Hold: <Enqueue action waitUrl>; the wait URL is requested again each time its TwiML ends and
          may <Leave>, after which the action URL gets QueueResult=leave
          (https://www.twilio.com/docs/voice/twiml/enqueue, .../twiml/leave);
        - Pause: <Pause length> then <Redirect> to our action URL, the goodbye's wait
          (https://www.twilio.com/docs/voice/twiml/pause, .../twiml/redirect);
        - Transfer: <Dial action timeout answerOnBridge> with the target's noun and its whisper url;
        - Record: <Record action> followed by a <Redirect>: when nothing is recorded Twilio goes on to
          the next verb, as the reference's own example does with "I did not receive a recording"
          (https://www.twilio.com/docs/voice/twiml/record)."""
        call_sid, turn = _CALL_MARK.removeprefix("parent="), _TURN_MARK.removeprefix("t=")
        response = VoiceResponse()
        pending: list[Say] = []  # Says nest inside the Gather that follows, so the caller may barge in

        def flush():
            for say in pending:
                response.append(say)
            pending.clear()

        for action in actions:
            if isinstance(action, act.Say):
                pending.append(self.say(action))
                continue
            if isinstance(action, act.Listen):
                options = {"num_digits": action.num_digits, "hints": ",".join(action.hints) or None}
                gather = Gather(input="dtmf speech", action=self.event_url("gather", turn), method="POST",
                                timeout=max(1, round(action.timeout)), speech_timeout="auto",
                                action_on_empty_result=True, language=self.speech_language,
                                **{k: v for k, v in options.items() if v})
                for say in pending:
                    gather.append(say)
                pending.clear()
                response.append(gather)
                continue
            flush()
            if isinstance(action, act.Pause):
                response.pause(length=max(1, round(action.seconds)))
                response.redirect(self.event_url("pause", turn), method="POST")
            elif isinstance(action, act.Hold):
                enqueue = Enqueue(action.queue, action=self.event_url("queue", turn), method="POST",
                                  wait_url=self.link("/twilio/hold/wait", t=turn), wait_url_method="POST")
                response.append(enqueue)
            elif isinstance(action, act.Play):
                response.play(action.url or self.link("/twilio/music", seconds=round(action.seconds)))
            elif isinstance(action, act.LeaveHold):
                response.leave()
            elif isinstance(action, act.Transfer):
                dial = Dial(action=self.event_url("dial", turn), method="POST",
                            timeout=dial_timeout(action.ring_limit), answer_on_bridge=True,
                            **({"caller_id": action.caller_id} if action.caller_id else {}))
                dial_target(dial, action.to, url=self.link("/twilio/whisper", parent=call_sid, t=turn), method="POST")
                response.append(dial)
            elif isinstance(action, act.Record):
                response.record(action=self.event_url("record", turn), method="POST",
                                max_length=round(action.max_length), finish_on_key=action.finish_keys,
                                play_beep=True, timeout=5)
                # Twilio skips the action when nothing was recorded and goes on to the next verb
                response.redirect(self.event_url("record", turn), method="POST")
            elif isinstance(action, act.Hangup):
                response.hangup()
        flush()
        return str(response)

    def whisper(self, text: str, parent: str, turn: int) -> str:
        """The agent's leg: who is calling and why; their key press (1) accepts, anything else hangs up
        the agent leg, and the caller then hears the apology and a choice (E10)."""
        response = VoiceResponse()
        gather = Gather(num_digits=1, timeout=WHISPER_ACCEPT_WAIT, method="POST",
                        action=self.link("/twilio/whisper/answer", parent=parent, t=turn))
        gather.append(self.say_plain(text))
        response.append(gather)
        response.hangup()
        return str(response)

    def speak(self, *texts: str, then_hangup: bool = False, dial: str | None = None) -> str:
        """A small response of plain speech (apologies, whisper, hold return). A `dial` (the flow's
        fallback) has an action, so a fallback that fails still ends politely (/twilio/fallback/dialled)."""
        response = VoiceResponse()
        for text in texts:
            if text:
                response.append(self.say_plain(text))
        if dial:
            fallback = self.flow.fallback
            target = Dial(action=self.link("/twilio/fallback/dialled", flow=self.flow.name), method="POST",
                          timeout=dial_timeout(self.flow.etiquette.transfer.ring_limit),
                          **({"caller_id": fallback.caller_id} if fallback.caller_id else {}))
            dial_target(target, dial)
            response.append(target)
        if then_hangup:
            response.hangup()
        return str(response)


def only(verb: str = "") -> str:
    """A response with at most one bare verb (<Hangup/>, <Leave/>), or empty."""
    response = VoiceResponse()
    if verb:
        getattr(response, verb)()
    return str(response)


class Renderers:
    """One Renderer per flow version (a flow's voice and language never change within a version)."""

    def __init__(self, base_url: str = ""):
        self.base_url = base_url
        self._by_version: dict[str, Renderer] = {}

    def get(self, engine) -> Renderer:
        renderer = self._by_version.get(engine.loaded.version)
        if renderer is None:
            renderer = self._by_version[engine.loaded.version] = Renderer(engine.flow, self.base_url)
        return renderer

    def answer(self, engine, actions: list, call_id: str, state) -> str:
        return self.get(engine).render(actions, call_id, state.turn)

    def apology(self, engine, state) -> str:
        """The flow's apology, then its fallback number or a goodbye and a hang-up."""
        flow = engine.flow
        goodbye = None if flow.fallback.transfer_to else engine.render(flow.etiquette.goodbye.say, state)
        return self.get(engine).speak(engine.apology(state), goodbye, dial=flow.fallback.transfer_to,
                                      then_hangup=not flow.fallback.transfer_to)
