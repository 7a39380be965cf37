"""The plain verbs on the caller's leg (Say, Play, Pause, Redirect, Hangup) and the table of all verbs."""
from __future__ import annotations

from urllib.parse import urljoin

from ivr.simulator.actions import PAUSE, HangUp
from ivr.simulator.dial import dial
from ivr.simulator.enqueue import enqueue
from ivr.simulator.gather import gather
from ivr.simulator.outcomes import End, Goto, attr_number
from ivr.simulator.record import record
from ivr.simulator.stream import start


def say_or_play(call, el, doc):
    call.hear(el, doc)
    return call.caller_may_hang_up()


def pause(call, el, doc):
    """The caller may hang up during a pause (E11: the goodbye pause is there so they hang up first)."""
    length = attr_number(el.get("length"), 1.0)
    action = call.decide(call.moment(PAUSE, timeout=length))
    if isinstance(action, HangUp) and action.after < length:
        call.clock.advance(action.after)
        call.caller_does("hangs up", "hangup")
        return End("caller")
    call.hear(el, doc)
    return None


def redirect(call, el, doc):
    return Goto(urljoin(doc.url, (el.text or "").strip() or doc.url), {}, (el.get("method") or "POST").upper())


def hangup(call, el, doc):
    return End("engine")


def leave_outside_queue(call, el, doc):
    call.note("<Leave> outside a queue: Twilio ignores it")
    return None


CALLER_VERBS = {"Say": say_or_play, "Play": say_or_play, "Pause": pause, "Gather": gather, "Record": record,
                "Enqueue": enqueue, "Leave": leave_outside_queue, "Dial": dial, "Redirect": redirect,
                "Hangup": hangup, "Reject": hangup, "Start": start}
