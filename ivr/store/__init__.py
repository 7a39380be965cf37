"""Call stores: SQLite (default), Redis (to scale out), memory (tests)."""
from ivr.store.base import CallStore, StoredCall, StoreError, StoreUnavailable
from ivr.store.memory import MemoryStore


def open_store(url: str) -> CallStore:
    """sqlite:///calls.db (relative) or sqlite:////abs/path.db, redis://host:port/db, memory://

    Redis timeouts (1 s by default) can be set in the URL: redis://host:6379/0?socket_timeout=0.5"""
    if url.startswith("memory:"):
        return MemoryStore()
    if url.startswith("sqlite:"):
        from ivr.store.sqlite import SqliteStore
        return SqliteStore(url.removeprefix("sqlite:///") or "calls.db")
    if url.startswith(("redis:", "rediss:", "unix:")):
        from ivr.store.redis import RedisStore
        return RedisStore(url)
    raise StoreError(f"unknown store '{url}': use sqlite:///calls.db, redis://127.0.0.1:6379/0 or memory://")


__all__ = ["CallStore", "MemoryStore", "StoreError", "StoreUnavailable", "StoredCall", "open_store"]
