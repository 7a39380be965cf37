"""The `ivr simulate`, `ivr test` and `ivr replay` commands (registered by ivr.cli)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ivr.simulator.transport import SimulatorError

REPO = Path(__file__).resolve().parent.parent.parent
DEFAULT_FLOW = REPO / "call_flows" / "bank_hotline.yaml"


def _token(args) -> str | None:
    return args.token or os.environ.get("TWILIO_AUTH_TOKEN")


def _print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


# --- ivr simulate ----------------------------------------------------------------------

def add_simulate_arguments(p) -> None:
    p.add_argument("flow", nargs="?", metavar="FLOW", help=f"flow file (default {DEFAULT_FLOW.name})")
    p.add_argument("--url", help="a running server (`ivr serve`), e.g. http://127.0.0.1:8080; default in-process")
    p.add_argument("--token", help="the server's TWILIO_AUTH_TOKEN, to sign requests (default: $TWILIO_AUTH_TOKEN)")
    p.add_argument("--public-url", help="the server's --public-url: requests are signed for it, as Twilio does")
    p.add_argument("--from", dest="caller_id", default="+8613700000000", help="the caller's number")
    p.add_argument("--to", dest="called", help="the number called")
    p.add_argument("--store", help="in-process: keep the call in this store (e.g. sqlite:///calls.db) for replay")
    p.add_argument("--json", action="store_true", help="print the transcript as JSON at the end")


def run_simulate(args) -> int:
    from ivr.flow import load_flow
    from ivr.simulator.runner import DEFAULT_CALLED, in_process, over_http, place_call
    from ivr.simulator.transcript import ConsoleView, Transcript
    from ivr.simulator.typed import TypedCaller
    from ivr.store import open_store

    flow_path = Path(args.flow) if args.flow else DEFAULT_FLOW
    transcript = Transcript()
    console = ConsoleView(sys.stderr if args.json else sys.stdout)
    if not args.json:
        transcript.listeners.append(console)
    interactive = sys.stdin.isatty()
    caller = TypedCaller(interactive=interactive, show=lambda text: console.show(text, "yellow"))
    try:
        voice_path = None
        if args.url:
            base, voice_path = _split_voice_url(args.url)
            transport = over_http(base, _token(args))
            transport.public_url = getattr(args, "public_url", None)
            flow = load_flow(flow_path).flow if args.flow else None
            flow_name, language = (flow.name, flow.language) if flow else (None, "cmn-CN")
            if voice_path and voice_path != "/twilio/voice":  # --url …/twilio/voice/NAME: that flow
                flow_name = voice_path.rsplit("/", 1)[-1]
        else:
            loaded = load_flow(flow_path)
            store = open_store(args.store) if args.store else None
            transport = in_process([flow_path], store=store, token=_token(args))
            flow_name, language = loaded.flow.name, loaded.flow.language
        if interactive and not args.json:
            where = args.url or f"{flow_path} (in-process)"
            console.show(f"Calling {where} from {args.caller_id}. Times are virtual seconds since the call started.",
                         "dim")
        result = place_call(transport, caller, flow_name, args.caller_id,
                            args.called or DEFAULT_CALLED.get(language), transcript)  # voice URL: the flow's
    except SimulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(result.to_dict())
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    return 0


def _split_voice_url(url: str) -> tuple[str, str | None]:
    """`--url http://host:8080/twilio/voice/bank_hotline_en` -> the server's base and the voice path in it."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    index = parts.path.find("/twilio/voice")
    if index < 0:
        return url.rstrip("/"), None
    return f"{parts.scheme}://{parts.netloc}{parts.path[:index]}", parts.path[index:].rstrip("/")


# --- ivr test -----------------------------------------------------------------------------

def add_test_arguments(p) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="caller scripts (YAML), or folders of them")
    p.add_argument("--url", help="run against a running server instead of in-process")
    p.add_argument("--token", help="the server's TWILIO_AUTH_TOKEN (default: $TWILIO_AUTH_TOKEN)")
    p.add_argument("--json", action="store_true", help="results as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="print the transcript of failed calls")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes (default 1): each loads every flow once and runs its share of the "
                        "scripts; results are printed in the scripts' order")


def outcomes_of(scripts: list[Path], url: str | None, token: str | None, transport, jobs: int):
    """Each script's outcome, in order: here (one app per flow for the whole run), or in `jobs` workers."""
    from ivr.simulator.runner import InProcessRun, run_script

    if jobs <= 1 or len(scripts) < 2:
        run = InProcessRun()  # each flow loaded once, one app per flow for the whole run
        for path in scripts:
            yield run_script(path, transport, run=run)
        return
    from ivr.simulator.workers import chunked, in_workers

    for outcomes in in_workers(_test_chunk, [(url, token, part) for part in chunked(scripts, jobs)], jobs):
        yield from outcomes


_WORKER_RUNS: dict = {}  # in a worker process: its run (apps and flows) or transport, kept between chunks


def _test_chunk(job) -> list:
    from ivr.simulator.runner import InProcessRun, over_http, run_script

    url, token, paths = job
    if url not in _WORKER_RUNS:
        _WORKER_RUNS[url] = over_http(url, token) if url else InProcessRun()
    kept = _WORKER_RUNS[url]
    transport, run = (kept, None) if url else (None, kept)
    return [run_script(path, transport, run=run) for path in paths]


def run_test(args) -> int:
    from ivr.simulator.runner import find_scripts, over_http
    from ivr.simulator.transcript import describe

    started = time.monotonic()
    scripts = find_scripts(args.paths)
    missing = [s for s in scripts if not s.exists()]
    if missing:
        print(f"error: no such file: {missing[0]}", file=sys.stderr)
        return 2
    try:
        transport = over_http(args.url, _token(args)) if args.url else None
    except SimulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not scripts:
        print("no caller scripts found (*.yaml)", file=sys.stderr)
        return 1
    outcomes = []
    for path, outcome in zip(scripts, outcomes_of(scripts, args.url, _token(args), transport, args.jobs)):
        outcomes.append(outcome)
        if args.json:
            continue
        rule = f" [{outcome.rule}]" if outcome.rule else ""
        print(f"{path}{rule} {'PASSED' if outcome.passed else 'FAILED'}", flush=True)
        if not outcome.passed:
            print(f"    {outcome.failure}")
            if args.verbose and outcome.result is not None:
                for line in outcome.result.transcript.lines:
                    print(f"      {describe(line)}")
    passed = sum(o.passed for o in outcomes)
    failed = len(outcomes) - passed
    if args.json:
        _print_json({"passed": passed, "failed": failed, "results": [o.to_dict() for o in outcomes]})
    else:
        print(f"{passed} passed, {failed} failed in {time.monotonic() - started:.2f}s")
    return 1 if failed else 0


# --- ivr replay ---------------------------------------------------------------------------

def add_replay_arguments(p) -> None:
    p.add_argument("call_sids", nargs="*", metavar="CALL_SID", help="calls to replay")
    p.add_argument("--since", help="also every call started at or after this time (ISO 8601 or epoch seconds)")
    p.add_argument("--all", action="store_true", help="every call in the store")
    p.add_argument("--store", required=True, help="the call store, e.g. sqlite:///calls.db")
    p.add_argument("--flow", help="replay against this flow file (default: the file each call's version came from)")
    p.add_argument("--context", type=int, default=1, help="lines of context around each difference (default 1)")
    p.add_argument("--json", action="store_true", help="results as JSON")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes (default 1); each loads the flow once and re-drives its calls in-process")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar on stderr (default: only when stderr is a terminal)")


def _progress(show: bool):
    """A rich progress bar on stderr, or a stand-in that does nothing (pipes, tests, --no-progress)."""
    if not show:
        return _NoProgress()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(file=sys.stderr)
    # on a terminal the bar goes away when done; asked for in a pipe (--progress), its final state stays
    return Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TextColumn("calls"),
                    TimeRemainingColumn(), console=console, transient=console.is_terminal)


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *args, **kwargs):
        return 0

    def advance(self, *args, **kwargs):
        pass


def run_replay(args) -> int:
    from ivr.simulator.replay import replay_many
    from ivr.store import open_store, parse_since

    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise SystemExit(f"error: --since {exc}") from None
    store = open_store(args.store, must_exist=True)  # a StoreError: ivr.cli prints it as one line, exit 1
    sids = list(args.call_sids)
    if args.all or args.since:
        named = set(sids)
        found = [row["call_sid"] for row in store.list_calls(since) if row["call_sid"] not in named]
        if not sids and not found:
            print(f"no calls since {args.since} in {args.store}" if args.since else
                  f"the store is empty: no calls in {args.store}")
            return 0
        sids += found
    if not sids:
        print("error: name calls to replay (CALL_SID...), or use --since TIME or --all", file=sys.stderr)
        return 2
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    with _progress(show) as progress:
        task = progress.add_task("replay", total=len(sids))
        replays = list(replay_many(store, args.store, sids, args.flow, args.context, args.jobs,
                                   done=lambda n: progress.advance(task, n)))
    differ = sum(r.differs for r in replays)
    errors = sum(r.error is not None for r in replays)
    if args.json:
        _print_json({"replayed": len(replays), "differ": differ, "errors": errors,
                     "calls": [r.to_dict() for r in replays]})
    else:
        for r in replays:
            if r.error:
                print(f"{r.call_sid}: cannot replay: {r.error}")
            elif r.differs:
                print(f"{r.call_sid}: what the caller hears would change")
                if r.note:
                    print(f"  (the logged caller could not be followed to the end: {r.note})")
                print("\n".join(r.diff))
            else:
                print(f"{r.call_sid}: no differences ({len(r.heard)} prompts)")
        print(f"{len(replays)} call(s) replayed, {differ} would sound different, {errors} could not be replayed")
    if errors:
        return 2
    return 1 if differ else 0
