"""The durable floor: a webhook app doing only the work no design can avoid.

Per request it parses Twilio's form, checks one HMAC signature, reads the call
(one store read) and saves state, the answer and the log entries in one write
transaction with compare-and-set, answering fixed TwiML. No flow, no engine, no
machines. `bench/bench_core.py` measures the engine's webhooks against it.
"""
from __future__ import annotations

import json

from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator, compare
from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.store import CallStore
from ivr.twilio.inbound import SignedParams

# a state of the size the engine keeps for a call in a menu (about 400 bytes of JSON)
STATE = {"flow": "synthetic", "flow_version": "0123456789abcdef", "caller": "+15550100000", "called": "+15550100001",
         "step": "m1", "phase": None, "listen_phase": None, "misses": {}, "variables": {"org": "Example Bank"},
         "last_said": ["Menu 1. For more, press 1. To finish, press 2."], "accepted_by": None, "ended": False}


def floor_app(store: CallStore, token: str) -> Flask:
    app = Flask("floor")
    validator = RequestValidator(token)
    twiml = VoiceResponse()
    gather = Gather(input="dtmf speech", action="/twilio/event?k=gather&t=1", method="POST", timeout=5)
    gather.say("Menu 1. For more, press 1. To finish, press 2.", language="en-US")
    twiml.append(gather)
    answer = str(twiml)

    @app.route("/twilio/<path:anything>", methods=["POST"])
    def webhook(anything):
        form = request.form  # one HMAC over the URL as requested, the cheapest exact check (as the engine's)
        if not compare(validator.compute_signature(request.url, SignedParams(form)),
                       request.headers.get("X-Twilio-Signature", "")):
            abort(403)
        sid = form.get("CallSid", "")
        received = {"kind": "request", "path": request.path, "query": request.args.to_dict(), "params": form.to_dict()}
        notes = [{"kind": "note", "fact": "chose", "step": "m0", "go": "m1"},
                 {"kind": "response", "path": request.path, "twiml": answer}]
        stored = store.load(sid)
        if stored is None:
            store.start(sid, {**STATE, "turn": 0}, answer, [received, *notes])
        else:
            state = json.loads(json.dumps(stored.state))  # the engine works on its own copy too
            state["turn"] = stored.turn + 1
            store.commit(sid, stored.turn, state, answer, [received, *notes])
        return Response(answer, mimetype="text/xml")

    return app
