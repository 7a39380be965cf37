"""Step kinds, one module each: model, engine behaviour, and what graph, lint and the loader need.

Adding a kind: write its module (a `Kind` subclass with `@register`) and import it here.
"""
from ivr.steps.base import KINDS, Choice, Kind, Way, register
from ivr.steps import say, menu, hold, transfer, record, lookup, set_vars, branch, callback, goodbye  # noqa: F401,E402

__all__ = ["KINDS", "Choice", "Kind", "Way", "register"]
