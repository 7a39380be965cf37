"""Call stores: SQLite (default), Redis (to scale out), memory (tests)."""
from datetime import datetime
from pathlib import Path

from ivr.store.base import CallStore, StoredCall, StoreError, StoreUnavailable
from ivr.store.memory import MemoryStore


def open_store(url: str, must_exist: bool = False) -> CallStore:
    """sqlite:///calls.db (relative) or sqlite:////abs/path.db, redis://host:port/db, memory://

    `must_exist`: for commands that only read (report, replay): a SQLite file that is not there is
    a mistake in --store, never a new empty store to create.

    Redis timeouts (1 s by default) can be set in the URL: redis://host:6379/0?socket_timeout=0.5"""
    if url.startswith("memory:"):
        return MemoryStore()
    if url.startswith("sqlite:"):
        from ivr.store.sqlite import SqliteStore

        path = Path(url.removeprefix("sqlite:///") or "calls.db")
        if must_exist and not path.exists():
            raise StoreError(f"no SQLite store at {path}: check --store (sqlite:///relative.db or "
                             "sqlite:////absolute.db)")
        if must_exist and path.is_dir():
            raise StoreError(f"{path} is a directory, not a SQLite store file")
        return SqliteStore(url.removeprefix("sqlite:///") or "calls.db")
    if url.startswith(("redis:", "rediss:", "unix:")):
        from ivr.store.redis import RedisStore
        return RedisStore(url)
    raise StoreError(f"unknown store '{url}': use sqlite:///calls.db, redis://127.0.0.1:6379/0 or memory://")


def parse_since(text: str) -> float:
    """`--since`: epoch seconds or an ISO date/time (2026-11-01, 2026-11-01T09:30, ...Z): the calls
    started at or after it. ValueError with a message for people otherwise."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"'{text}' is neither epoch seconds nor an ISO date/time "
                         "(e.g. 2026-11-01 or 2026-11-01T09:30)") from None


__all__ = ["parse_since", "CallStore", "MemoryStore", "StoreError", "StoreUnavailable", "StoredCall", "open_store"]
