"""`ivr`: serve | validate | schema | lint | graph | report | simulate | test | replay | publish | reconcile | line.

Every command's wiring is here, with plain imports: a module that fails to import fails the
`ivr` command loudly instead of making a command vanish. Each command prints errors for people
(file:line, what is wrong, what would be right) and exits non-zero on failure; no traceback
reaches an ops user. `--format json` asks any command that has results for JSON.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ivr import settings
from ivr.call import publish, reconcile
from ivr.etiquette import lint
from ivr.etiquette import report
from ivr.etiquette.lint.run import no_cyclic_gc
from ivr.flow import FlowError, load_flow
from ivr.flow import graph
from ivr.flow.load import flows_in
from ivr.media import cli as line_cli
from ivr.simulator import commands as sim
from ivr.store import StoreError, parse_since

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FLOW = REPO / "call_flows" / "bank_hotline.yaml"
FORMAT_HELP = "text for people (default) or json for tools"

# help for options defined by the modules that own them, where they give none
FALLBACK_HELP = {"file": "the recording to analyse (any WAV)", "format": FORMAT_HELP}


def ivr_version() -> str:
    try:
        return version("ivr-etiquette")
    except PackageNotFoundError:
        return "unknown (not installed)"


def flow_paths(items: list[str]) -> list[Path]:
    """Files as given; directories expand to their *.yaml flows (not caller directories)."""
    return [p for item in items for p in (flows_in(item) if Path(item).is_dir() else [Path(item)])]


def print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


# --- validate, schema ---------------------------------------------------------------------

def cmd_validate(args) -> int:
    results, failed = [], 0
    for path in flow_paths(args.flows):
        try:
            with no_cyclic_gc():
                loaded = load_flow(path)
        except FlowError as exc:
            failed += 1
            results.append({"file": str(path), "ok": False, "problems": [
                {"file": p.file, "line": p.line, "col": p.col, "message": p.message} for p in exc.problems]})
            if args.format == "text":
                print(exc, file=sys.stderr)
            continue
        flow = loaded.flow
        results.append({"file": str(path), "ok": True, "flow": flow.name, "version": flow.version,
                        "steps": len(flow.steps), "language": flow.language, "text_version": loaded.version})
        if args.format == "text":
            print(f"ok  {path}: flow '{flow.name}' version {flow.version} ({len(flow.steps)} steps, "
                  f"{flow.language}, text {loaded.version})")
    if args.format == "json":
        print_json({"flows": results, "failed": failed})
    elif failed:
        print(f"{failed} flow file(s) have errors", file=sys.stderr)
    return 1 if failed else 0


def cmd_schema(args) -> int:
    from ivr.flow.model import Flow

    schema = Flow.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "IVR call flow"
    text = json.dumps(schema, ensure_ascii=False, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


# --- lint ------------------------------------------------------------------------------

def cmd_lint(args) -> int:
    return lint.main_lint(args.paths, args.format, args.rules, args.limit or None)


# --- graph -----------------------------------------------------------------------------

def cmd_graph(args) -> int:
    fmt = args.format or graph.BY_SUFFIX.get(Path(args.out).suffix.lower() if args.out else "", "mermaid")
    if fmt == "png" and not args.out:
        print("ivr graph: --format png writes a file: add --out FLOW.png", file=sys.stderr)
        return 1
    try:
        with no_cyclic_gc():
            data = graph.RENDER[fmt](load_flow(args.flow))
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (graph.GraphvizMissing, subprocess.TimeoutExpired) as exc:
        print(f"ivr graph: {exc}", file=sys.stderr)
        return 1
    if not args.out:
        sys.stdout.write(data)
        return 0
    try:
        if isinstance(data, bytes):
            Path(args.out).write_bytes(data)
        else:
            Path(args.out).write_text(data, encoding="utf-8")
    except OSError as exc:
        print(f"ivr graph: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({fmt})")
    return 0


# --- report ------------------------------------------------------------------------------

def _since(text: str) -> float:
    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _write(text: str, out: str | None) -> None:
    text = report.printable(text)
    if out:
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {out}")
    else:
        sys.stdout.write(text)


def cmd_report(args) -> int:
    try:
        log = None
        if args.call:
            card, log = report.load_call(args.store, args.call)
            cards = [card]
        else:
            cards = report.load_cards(args.store, args.since, args.flow)
        if not cards:
            what = f" of flow {args.flow}" if args.flow else ""
            print(f"no calls{what} in {args.store}" + (" since the time given" if args.since else ""))
            return 0
        data = report.build_report(cards, args.store, args.since, args.flow)
        if args.format == "json":
            if log is not None:
                data["timeline"] = report.timeline(log)
            _write(json.dumps(data, ensure_ascii=False, indent=2) + "\n", args.out)
        elif args.format == "html":
            out = args.out or str(Path(tempfile.mkdtemp(prefix="ivr-report-")) / "report.html")
            _write(report.render_html(data), out)
        elif log is not None:
            _write(report.format_call_detail(cards[0], log), args.out)
        elif args.out or not sys.stdout.isatty():
            _write(report.format_text(data), args.out)
        else:
            report.print_rich(data)
        return 0
    except report.ReportError as e:
        print(f"ivr report: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - an ops tool prints one line, never a traceback
        print(f"ivr report: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


# --- serve -------------------------------------------------------------------------------

def cmd_serve(args) -> int:
    from ivr.twilio import create_app

    # media stream sockets hold a thread each: leave the webhooks at least 8 of every worker's threads
    os.environ.setdefault("IVR_MAX_STREAMS", str(max(1, args.threads - 8)))
    app = create_app(flows=args.flow, flows_dir=args.flows_dir, store=args.store, public_url=args.public_url)
    names = app.extensions["ivr"].registry.names()
    start_background(app, args)
    base = f"http://{args.host}:{args.port}"
    print(f"Serving flows {', '.join(names)} on {base} (store {args.store}, {args.workers} worker(s))")
    print(f"  Twilio voice URL:      {args.public_url or base}/twilio/voice   (POST)")
    print(f"  Twilio status callback: {args.public_url or base}/twilio/status  (POST)")
    print(f"  Place a call from another terminal: .venv/bin/ivr simulate --url {base}")
    sys.stdout.flush()
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("limit_request_line", 8190)  # a GET webhook carries all its parameters in the URL
            self.cfg.set("workers", args.workers)
            self.cfg.set("threads", args.threads)
            self.cfg.set("worker_class", "gthread")  # a Media Stream WebSocket holds a thread for its call
            self.cfg.set("accesslog", "-" if args.access_log else None)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn 27's control socket is one path per
                self.cfg.set("control_socket_disable", True)   # user: two servers on a host would share it
            # each worker adopts the published flow versions before it serves (ivr.call.registry)
            self.cfg.set("post_fork", lambda server, worker: app.extensions["ivr"].registry.start_syncing())

        def load(self):
            return app

    Server().run()
    return 0


def start_background(app, args) -> None:
    """Off every request's path: publish edited flow files that validate (ivr.call.publish) and close
    calls whose end never came (ivr.call.reconcile), in a process of their own. Not threads of this
    one: gunicorn forks the workers from it, and a worker forked while a thread is inside SQLite
    inherits SQLite's locks held forever (a worker hung at its first query). For the same reason the
    store this process opened is closed before the workers are forked; each opens its own."""
    from ivr.call.reconcile import idle_limit

    service = app.extensions["ivr"]
    limit = settings.seconds("IVR_RECONCILE_IDLE", None)
    if limit is None:
        limit = idle_limit(engine.flow for engine in list(service.registry._by_version.values()))
    every = settings.seconds("IVR_RECONCILE_EVERY", 30)
    job = {"store": args.store, "paths": [str(p) for p in service.registry.paths], "flows_dir": args.flows_dir,
           "limit": limit, "every": every, "server": os.getpid()}
    subprocess.Popen([sys.executable, "-c", "import sys, json; from ivr.cli import background_jobs; "
                      "background_jobs(**json.loads(sys.argv[1]))", json.dumps(job)])
    service.store.close()
    print(f"  Edited flows are checked and published within a second; calls silent for {limit:.0f} s are "
          "closed as lost")


def background_jobs(store: str, paths: list[str], flows_dir: str | None, limit: float, every: float,
                    server: int) -> None:
    """The background process of `ivr serve`: the flow watcher and the reconciler, until the server
    (process `server`) is gone."""
    import time

    from ivr.call.publish import FlowWatcher
    from ivr.call.reconcile import reconciler
    from ivr.store import open_store

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    opened = open_store(store)
    FlowWatcher(opened, store, [Path(p) for p in paths], flows_dir).start()
    reconciler(opened, limit, every=every).start()
    while os.getppid() == server:  # the server stopped (or died): so do we
        time.sleep(1)


# --- the simulator's commands (their own module), with --format json like every command ----

def _json_format(run):
    def wrapped(args):
        args.json = bool(getattr(args, "json", False)) or args.format == "json"
        return run(args)
    return wrapped


def add_format(p, choices=("text", "json")) -> None:
    p.add_argument("--format", choices=choices, default="text", help=FORMAT_HELP)


# --- the parser ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="Telephone-etiquette engine for the bank hotline")
    parser.add_argument("--version", action="version", version=f"%(prog)s {ivr_version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="serve flows to Twilio (gunicorn)")
    p.add_argument("--flow", action="append", help=f"flow file (repeatable; default {DEFAULT_FLOW.name})")
    p.add_argument("--flows-dir", help="serve every flow in a folder, chosen by called number or /twilio/voice/NAME")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("--store", default="sqlite:///calls.db", help="sqlite:///calls.db | redis://host:6379/0")
    p.add_argument("--public-url", help="the https URL Twilio uses, when behind a proxy (for signatures)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    p.add_argument("--threads", type=int, default=32,
                   help="threads per worker (gthread); each live call's media stream holds one (default 32)")
    p.add_argument("--access-log", action="store_true", help="log every request to stdout")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("validate", help="load flows and report every error with file:line")
    p.add_argument("flows", nargs="+", metavar="FLOW_OR_DIR", help="flow files, or folders of them")
    add_format(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of the flow language (for editors)")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("lint", help="check flows against the etiquette rules (E1-E15)")
    p.add_argument("paths", nargs="+", metavar="FLOW_OR_DIR", help="flow files, or folders of them")
    add_format(p)
    p.add_argument("--rules", help="an extra rules YAML file (more forbidden words, jargon...)")
    p.add_argument("--limit", type=int, default=lint.DEFAULT_LIMIT, metavar="N",
                   help=f"text: show at most N findings, then a count (default {lint.DEFAULT_LIMIT}; 0 = all)")
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("graph", help="draw a flow as a picture")
    p.add_argument("flow", metavar="FLOW", help="the flow .yaml file")
    p.add_argument("--format", choices=graph.FORMATS,
                   help="mermaid (default; GitHub/GitLab show it), dot (Graphviz), html (one page, a picture "
                        "with or without Graphviz), svg and png (need Graphviz), json (steps and ways between "
                        "them, for tools); guessed from --out's ending when not given")
    p.add_argument("--out", metavar="FILE", help="write to this file instead of the screen (png: required)")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("report", help="compliance scorecard from the call log")
    p.add_argument("--store", default="sqlite:///calls.db",
                   help="the call store to read (sqlite:///calls.db | redis://host:6379/0)")
    p.add_argument("--since", type=_since, help="only calls started at or after: ISO date/time or epoch seconds")
    p.add_argument("--flow", help="only calls of this flow (by name)")
    p.add_argument("--format", choices=("text", "json", "html"), default="text",
                   help="text for people (default), json for tools, html for a page with charts")
    p.add_argument("--out", metavar="FILE",
                   help="write to this file (html without --out: report.html in a new temporary folder)")
    p.add_argument("--call", metavar="SID", help="one call's scorecard and timeline (the end of its SID is enough)")
    p.set_defaults(func=cmd_report)

    for name, what, add_arguments, run in (
            ("simulate", "place an interactive (or piped) call in the simulator", sim.add_simulate_arguments,
             sim.run_simulate),
            ("test", "run caller scripts (YAML) against a flow", sim.add_test_arguments, sim.run_test),
            ("replay", "re-drive logged calls against the current flow and diff", sim.add_replay_arguments,
             sim.run_replay)):
        p = sub.add_parser(name, help=what)
        add_arguments(p)
        add_format(p)
        p.set_defaults(func=_json_format(run))

    p = sub.add_parser("publish", help="check flows and make them the versions new calls get, on every worker")
    publish.add_arguments(p)
    p.set_defaults(func=publish.run)

    p = sub.add_parser("reconcile", help="close calls whose end Twilio never reported, as lost")
    reconcile.add_arguments(p)
    p.set_defaults(func=reconcile.run)

    p = sub.add_parser("line", help="perceive the line from audio: ivr line analyse FILE.wav")
    line_cli.add_arguments(p)
    p.set_defaults(func=line_cli.run)

    _fill_help(parser)
    return parser


def _fill_help(parser: argparse.ArgumentParser) -> None:
    """Every option has help text, including those of modules that define their own."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action.choices.values():
                _fill_help(choice)
        elif action.help is None and action.dest in FALLBACK_HELP:
            action.help = FALLBACK_HELP[action.dest]
        elif action.dest == "json" and action.help and "--format json" not in action.help:
            action.help += " (same as --format json)"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"ivr {args.command}: {exc}", file=sys.stderr)
        return 1
    except settings.SettingError as exc:
        print(f"ivr {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and cut short: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
