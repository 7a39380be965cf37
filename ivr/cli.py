"""`ivr`: serve | simulate | test | replay | lint | validate | graph | report | schema.

Each command prints errors for people (file:line, what is wrong, what would be
right) and exits non-zero on failure; no traceback reaches an ops user.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path

from ivr.flow import FlowError, load_flow
from ivr.flow.load import flows_in
from ivr.media import cli as line_cli
from ivr.store import StoreError

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FLOW = REPO / "call_flows" / "bank_hotline.yaml"

# commands that live with the part they belong to: module with add_arguments(parser) and run(args) -> int
DELEGATED = {
    "simulate": ("ivr.simulator.commands", "simulate", "place an interactive (or piped) call in the simulator"),
    "test": ("ivr.simulator.commands", "test", "run caller scripts (YAML) against a flow"),
    "replay": ("ivr.simulator.commands", "replay", "re-drive logged calls against the current flow and diff"),
    "lint": ("ivr.etiquette.lint", None, "check flows against the etiquette rules (E1-E15)"),
    "report": ("ivr.etiquette.report", None, "compliance scorecard from the call log"),
    "graph": ("ivr.flow.graph", None, "draw a flow as a picture"),
}


def flow_paths(items: list[str]) -> list[Path]:
    """Files as given; directories expand to their *.yaml flows (not caller directories)."""
    return [p for item in items for p in (flows_in(item) if Path(item).is_dir() else [Path(item)])]


def cmd_validate(args) -> int:
    failed = 0
    for path in flow_paths(args.flows):
        try:
            loaded = load_flow(path)
        except FlowError as exc:
            failed += 1
            print(exc, file=sys.stderr)
            continue
        flow = loaded.flow
        print(f"ok  {path}: flow '{flow.name}' version {flow.version} ({len(flow.steps)} steps, "
              f"{flow.language}, text {loaded.version})")
    if failed:
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


def cmd_serve(args) -> int:
    from ivr.twilio import create_app

    app = create_app(flows=args.flow, flows_dir=args.flows_dir, store=args.store, public_url=args.public_url)
    names = app.extensions["ivr"].registry.names()
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
            self.cfg.set("workers", args.workers)
            self.cfg.set("threads", args.threads)
            self.cfg.set("worker_class", "gthread")  # a Media Stream WebSocket holds a thread for its call
            self.cfg.set("accesslog", "-" if args.access_log else None)

        def load(self):
            return app

    Server().run()
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="ivr", description="Telephone-etiquette engine for the bank hotline")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve flows to Twilio (gunicorn)")
    p.add_argument("--flow", action="append", help=f"flow file (repeatable; default {DEFAULT_FLOW.name})")
    p.add_argument("--flows-dir", help="serve every flow in a folder, chosen by called number or /twilio/voice/NAME")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--store", default="sqlite:///calls.db", help="sqlite:///calls.db | redis://host:6379/0")
    p.add_argument("--public-url", help="the https URL Twilio uses, when behind a proxy (for signatures)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=32,
                   help="threads per worker (gthread); each live call's media stream holds one (default 32)")
    p.add_argument("--access-log", action="store_true")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("validate", help="load flows and report every error with file:line")
    p.add_argument("flows", nargs="+", metavar="FLOW")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of the flow language (for editors)")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("line", help="perceive the line from audio: ivr line analyse FILE.wav")
    line_cli.add_arguments(p)
    p.set_defaults(func=line_cli.run)

    for name, (module_name, prefix, help_text) in DELEGATED.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        add = getattr(module, f"add_{prefix}_arguments" if prefix else "add_arguments", None)
        run = getattr(module, f"run_{prefix}" if prefix else "run", None)
        if add and run:
            p = sub.add_parser(name, help=help_text)
            add(p)
            p.set_defaults(func=run)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"ivr {args.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and cut short: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
