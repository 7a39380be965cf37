"""<Enqueue>: the caller waits in a queue, hearing the waitUrl's TwiML, until they leave it.

Twilio's documented behaviour, as simulated:
- the waitUrl is requested with QueueSid, QueueTime (seconds in the queue), QueuePosition,
  CurrentQueueSize and AvgQueueTime; its TwiML runs, and when it ends the waitUrl is requested
  again. Only Play, Say, Pause, Hangup, Redirect, Leave and Gather are allowed there
  (https://www.twilio.com/docs/voice/twiml/enqueue#attributes-wait-url): anything else (a <Dial>)
  is refused. A nested <Gather> plays its prompts and listens `timeout` s; a caller on hold
  presses nothing, so Twilio goes on with the next verb (or its action, with actionOnEmptyResult);
- <Leave>: the caller leaves the queue; `action` gets QueueResult=leave and QueueTime;
- an agent dequeues the caller with <Dial><Queue url="...">: the url's TwiML runs on the
  caller's end (they hear it), then the two talk; when they hang up `action` gets
  QueueResult=bridged with the QueueTime spent waiting;
- the caller hangs up while queued: `action` gets QueueResult=hangup (its TwiML is not run);
- without `action`, Twilio goes on with the verb after <Enqueue>.
"""
from __future__ import annotations

from urllib.parse import urljoin

from ivr.simulator.actions import HOLD, AbortCall, AgentTakes, HangUp, StayOnHold
from ivr.simulator.legs import new_sid
from ivr.simulator.outcomes import End, Goto, attr_number
from ivr.simulator.transport import SimulatorError

WAIT_VERBS = ("Play", "Say", "Pause", "Hangup", "Redirect", "Leave", "Gather")
CALLERS_AHEAD, AHEAD_SERVED_EVERY, AVERAGE_WAIT = 2, 20, 40
IDLE_DOCUMENTS = 3  # wait documents in a row that take no time: the waitUrl would spin
NEXT_VERB = object()  # the hold ended and <Enqueue> has no action: Twilio goes on with the next verb


def enqueue(call, el, doc):
    return Queue(call, el, doc).wait()


class Queue:
    def __init__(self, call, el, doc):
        self.call = call
        self.name = (el.text or "").strip()
        self.action_url = urljoin(doc.url, el.get("action")) if el.get("action") else None
        self.method = (el.get("method") or "POST").upper()
        self.wait_url = urljoin(doc.url, el.get("waitUrl")) if el.get("waitUrl") else None
        self.wait_method = (el.get("waitUrlMethod") or "POST").upper()
        self.sid = new_sid("QU")
        self.enqueued_at = call.clock.now
        self.plan = None  # what the caller does next: StayOnHold / AgentTakes / HangUp
        self.deadline: float | None = None  # when the plan takes effect

    @property
    def queue_time(self) -> int:
        return int(round(self.call.clock.now - self.enqueued_at, 3))  # whole seconds, as Twilio reports them

    # --- the caller's plan ---------------------------------------------------------
    def ask(self) -> None:
        plan = self.call.decide(self.call.moment(HOLD, queue=self.name, queue_time=self.queue_time))
        if isinstance(plan, (AgentTakes, HangUp)):
            self.deadline = self.call.clock.now + plan.after
        elif isinstance(plan, StayOnHold):
            self.deadline = None if plan.seconds is None else self.call.clock.now + plan.seconds
        else:
            raise AbortCall(f"on hold (t={self.call.clock.now:g}s) the caller can wait, have an agent take the "
                            f"call, or hang up, not {type(plan).__name__}")
        self.plan = plan

    def settle(self) -> bool:
        """The plan's time has come: True when it ends the wait now (an agent takes the call, the caller
        hangs up); otherwise the caller decides again until their next plan lies ahead."""
        while True:
            if isinstance(self.plan, (AgentTakes, HangUp)):
                return True
            self.ask()
            if self.deadline is None or self.deadline > self.call.clock.now:
                return False

    def end_wait(self):
        return self.taken(self.plan) if isinstance(self.plan, AgentTakes) else self.hung_up()

    # --- waiting -----------------------------------------------------------------------
    def wait(self):
        call = self.call
        call.note(f"queued in '{self.name}'")
        self.ask()
        if self.deadline is not None and self.deadline <= call.clock.now and self.settle():
            outcome = self.end_wait()
            return None if outcome is NEXT_VERB else outcome
        idle = 0
        while True:
            if self.wait_url is None:
                raise SimulatorError("<Enqueue> without waitUrl plays Twilio's own music, which is not simulated")
            before = call.clock.now
            params = call.leg.params(QueueSid=self.sid, QueueTime=self.queue_time, **self.queue_figures())
            outcome = self.run_wait_document(call.fetch(self.wait_url, params, self.wait_method))
            if outcome is NEXT_VERB:
                return None
            if outcome is not None:
                return outcome
            idle = idle + 1 if call.clock.now == before else 0
            if idle >= IDLE_DOCUMENTS:
                raise SimulatorError(f"the waitUrl {call.path(self.wait_url)} answers TwiML that takes no time: "
                                     "Twilio would request it again and again")

    def run_wait_document(self, doc):
        call = self.call
        for el in doc.root:
            if el.tag == "Leave":
                return self.left()
            if el.tag == "Hangup":
                return End("engine")
            if el.tag == "Redirect":
                target = urljoin(doc.url, (el.text or "").strip() or doc.url)
                return self.run_wait_document(call.fetch(target, call.leg.params(), (el.get("method") or "POST")))
            if el.tag == "Gather":
                outcome = self.gather(el, doc)
                if outcome is not None:
                    return outcome
                continue
            if el.tag not in ("Say", "Play", "Pause"):
                raise SimulatorError(f"<{el.tag}> in the waitUrl TwiML {call.path(doc.url)}: Twilio allows only "
                                     f"{', '.join(WAIT_VERBS)} there")
            for piece in call.segments(el, doc):
                outcome = self.play(piece)
                if outcome is not None:
                    return outcome
        return None

    def queue_figures(self) -> dict:
        """QueuePosition, CurrentQueueSize and AvgQueueTime as a real queue reports them: they change while
        the caller waits (https://www.twilio.com/docs/voice/twiml/enqueue#attributes-wait-url-parameters).
        The simulated queue has callers ahead who are served one every AHEAD_SERVED_EVERY s."""
        ahead = max(0, CALLERS_AHEAD - int(self.queue_time // AHEAD_SERVED_EVERY))
        return {"QueuePosition": ahead + 1, "CurrentQueueSize": ahead + 1 + int(self.queue_time // 45),
                "AvgQueueTime": AVERAGE_WAIT + int(self.queue_time // 10)}

    def gather(self, el, doc):
        """A <Gather> in the wait URL: its prompts play on hold, then `timeout` s of listening pass."""
        call = self.call
        for child in el:
            if child.tag not in ("Say", "Play", "Pause"):
                raise SimulatorError(f"<Gather><{child.tag}> in the waitUrl TwiML {call.path(doc.url)}")
            for piece in call.segments(child, doc):
                outcome = self.play(piece)
                if outcome is not None:
                    return outcome
        seconds = attr_number(el.get("timeout"), 5.0)
        from ivr.simulator.fake_twilio import Segment

        outcome = self.play(Segment(f"(listening {seconds:g} s on hold)", seconds, "pause"))
        if outcome is None and (el.get("actionOnEmptyResult") or "").lower() == "true":
            target = urljoin(doc.url, el.get("action") or doc.url)
            return self.run_wait_document(call.fetch(target, call.leg.params(), (el.get("method") or "POST")))
        return outcome

    def play(self, piece):
        """Play one piece to the queued caller; the plan may take effect in the middle of it."""
        call = self.call
        start = call.clock.now
        end = None if piece.seconds is None else start + piece.seconds
        while self.deadline is not None and (end is None or self.deadline < end):
            call.clock.advance(max(self.deadline - call.clock.now, 0))
            if self.settle():  # the piece stops here: the caller heard only this much of it
                call.emit(piece, seconds=round(call.clock.now - start, 3), t=start, interrupted=True)
                return self.end_wait()
        if end is None:
            raise SimulatorError("<Play loop=\"0\"> on hold with the caller waiting for the hold to end: "
                                 "it would play forever")
        call.emit(piece, t=start)
        call.clock.advance(end - call.clock.now)
        if piece.kind == "say" and isinstance(self.plan, StayOnHold) and self.plan.until == "voice" \
                and self.plan.seconds is None and self.settle():
            return self.end_wait()  # the caller waited for the next words; now they decided
        return None

    # --- how the hold ends ---------------------------------------------------------------
    def left(self):
        self.call.note(f"leaves the queue after {self.queue_time} s (<Leave>)")
        return self.result("leave")

    def taken(self, plan: AgentTakes):
        call = self.call
        queue_time = self.queue_time
        call.note(f"an agent takes the call off hold after {queue_time} s in '{self.name}'")
        # the agent's <Dial><Queue url=...>: its TwiML runs on the caller's end before the two are connected
        doc = call.fetch(call.url(plan.url), call.leg.params(QueueSid=self.sid, QueueTime=queue_time,
                                                             DequeingCallSid=new_sid("CA")))
        self.run_before_bridge(doc)
        call.note(f"connected to the agent: they talk for {plan.talk:g} s")
        call.clock.advance(plan.talk)
        call.note("the agent hangs up")
        return self.result("bridged", queue_time)

    def run_before_bridge(self, doc) -> None:
        call = self.call
        for el in doc.root:
            if el.tag == "Redirect":
                target = urljoin(doc.url, (el.text or "").strip() or doc.url)
                return self.run_before_bridge(call.fetch(target, call.leg.params(), el.get("method") or "POST"))
            if el.tag not in ("Say", "Play", "Pause"):
                raise SimulatorError(f"<{el.tag}> in the <Queue url> TwiML {call.path(doc.url)}: Twilio allows "
                                     "only Play, Say, Pause and Redirect there "
                                     "(https://www.twilio.com/docs/voice/twiml/queue#attributes-url)")
            call.hear(el, doc)
        return None

    def hung_up(self):
        call = self.call
        call.caller_does("hangs up while on hold", "hangup")
        if self.action_url:  # Twilio tells the action; nobody hears its answer
            call.fetch(self.action_url, call.leg.params("completed", QueueResult="hangup", QueueSid=self.sid,
                                                        QueueTime=self.queue_time), self.method)
        return End("caller")

    def result(self, result: str, queue_time: int | None = None):
        if self.action_url is None:
            return NEXT_VERB
        params = {"QueueResult": result, "QueueSid": self.sid,
                  "QueueTime": self.queue_time if queue_time is None else queue_time}
        return Goto(self.action_url, params, self.method)
