"""The apps bench_http.py serves with gunicorn: `gunicorn 'wsgi_apps:app()'` with BENCH_APP=bare|floor|engine,
BENCH_STORE (a store URL), BENCH_FLOW (a flow file) and BENCH_TOKEN in the environment."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def app():
    kind, store, token = os.environ["BENCH_APP"], os.environ.get("BENCH_STORE", "memory://"), os.environ["BENCH_TOKEN"]
    if kind == "bare":
        from bench_core import bare_app

        return bare_app()
    from ivr.store import open_store

    if kind == "floor":
        from floor_app import floor_app

        return floor_app(open_store(store), token)
    from ivr.twilio import create_app

    return create_app([os.environ["BENCH_FLOW"]], store=store, auth_token=token)
