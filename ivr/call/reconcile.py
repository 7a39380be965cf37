"""Close calls Twilio never told us the end of (issue 12 item 7).

A status callback that arrives while the store is down is lost, and its call stays "in progress"
in the store for ever. The reconciler closes, and logs as lost, every call with no webhook for longer
than any step can last:

- `idle_limit(flows)`: the longest one step can keep a call quiet, from the flows themselves: the
  longest hold limit + the longest ring limit and the agent's whisper + the longest recording + the
  longest listening windows + the goodbye pause, doubled, plus a minute;
- a call that may be bridged to an agent (on hold, or ringing after an agent accepted) sends no
  webhook until that conversation ends, which can take as long as Twilio lets a call last
  (4 hours): it is closed only after TWILIO_MAX_CALL plus the limit above.

Closing is compare-and-set on the call's turn (`end_call(expected_turn=...)`): a webhook that moves
the call on at the same moment wins, and two reconcilers (every host of a Redis store runs one) never
both close a call. The log gets `lost` (how long it was idle at least) and `call_ended` with status
`lost`, which the scorecard (`ivr report`) shows.

It runs off the request path: a daemon thread in `ivr serve`, or `ivr reconcile` (e.g. from cron)
for servers run some other way.
"""
from __future__ import annotations

import logging
import sys

from ivr.call import facts
from ivr.call.every import Every
from ivr.store import CallStore, StoreError, open_store

log = logging.getLogger("ivr.reconcile")
TWILIO_MAX_CALL = 4 * 3600.0  # Twilio's default (and largest) time limit of a call, in seconds
WHISPER_WAIT = 10.0  # the agent's time to press the key (ivr.twilio.twiml.WHISPER_ACCEPT_WAIT)
MARGIN = 60.0
EVERY = 30.0
DURATIONS = ("limit", "ring_limit", "max_length", "listen", "final_listen", "wait", "check_in_every")


def _maxima(value, found: dict[str, float]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in DURATIONS and isinstance(item, (int, float)) and not isinstance(item, bool):
                found[key] = max(found.get(key, 0.0), float(item))
            else:
                _maxima(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _maxima(item, found)


def idle_limit(flows) -> float:
    """Seconds after which a call with no webhook cannot still be in any step of these flows."""
    found: dict[str, float] = {}
    for flow in flows:
        _maxima(flow.model_dump(), found)
    longest = sum(found.values()) + WHISPER_WAIT
    return 2 * longest + MARGIN


def may_be_bridged(state: dict) -> bool:
    return state.get("phase") == "holding" or (state.get("phase") == "ringing" and bool(state.get("accepted_by")))


def reconcile(store: CallStore, limit: float) -> list[str]:
    """Close the calls idle for longer than `limit` (longer than TWILIO_MAX_CALL + limit if they may be
    talking to an agent); the sids closed."""
    closed = []
    candidates = store.stale_calls(limit)
    if not candidates:
        return closed
    long_idle = set(store.stale_calls(TWILIO_MAX_CALL + limit))
    for sid in candidates:
        try:
            call = store.load(sid)
            if call is None or call.state.get("ended"):
                continue
            bridged = may_be_bridged(call.state)
            if bridged and sid not in long_idle:
                continue
            idle = TWILIO_MAX_CALL + limit if bridged else limit
            state = {**call.state, "ended": True, "turn": call.turn + 1}
            entries = [{**facts.Lost(idle_seconds=round(idle)).to_dict(), "kind": "note", "turn": call.turn + 1},
                       {**facts.CallEnded("lost").to_dict(), "kind": "note"}]
            if store.end_call(sid, state, entries, expected_turn=call.turn):
                closed.append(sid)
                log.warning("call %s closed as lost: no webhook for over %g s (its status callback never came; "
                            "it was at step %s)", sid, idle, call.state.get("step"))
        except StoreError as exc:
            log.warning("could not reconcile call %s: %s", sid, exc)
    return closed


def reconciler(store: CallStore, limit: float, every: float = EVERY) -> Every:
    """`reconcile` every `every` seconds, beside the webhooks (ivr serve starts it)."""
    return Every("ivr-reconcile", every, lambda: reconcile(store, limit))


def add_arguments(parser) -> None:
    parser.add_argument("flows", nargs="*", metavar="FLOW", help="the flows served (default: the bank hotline); "
                        "the idle limit is computed from them")
    parser.add_argument("--store", default="sqlite:///calls.db", help="sqlite:///calls.db | redis://host:6379/0")
    parser.add_argument("--idle", type=float, help="seconds without a webhook (default: computed from the flows)")


def run(args) -> int:
    from ivr.cli import DEFAULT_FLOW, flow_paths
    from ivr.flow import load_flow

    limit = args.idle or idle_limit([load_flow(p).flow for p in flow_paths(args.flows or [str(DEFAULT_FLOW)])])
    closed = reconcile(open_store(args.store), limit)
    print(f"{len(closed)} call(s) closed as lost (no webhook for over {limit:g} s)", file=sys.stdout)
    for sid in closed:
        print(f"  {sid}")
    return 0
