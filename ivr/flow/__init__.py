"""Call flows: YAML files -> a typed, checked model.

Names are imported on first use, so that `ivr.flow.types` (which every step kind uses)
can be imported without loading the model, which is itself built from the step kinds.
"""
from importlib import import_module

_WHERE = {"Flow": "model", "Step": "model", "FlowError": "source", "Problem": "source",
          "LoadedFlow": "load", "load_flow": "load", "load_flow_text": "load"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'ivr.flow' has no attribute '{name}'")
    return getattr(import_module(f"ivr.flow.{_WHERE[name]}"), name)
