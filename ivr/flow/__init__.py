"""Call flows: YAML files -> a typed, checked model."""
from ivr.flow.load import LoadedFlow, load_flow, load_flow_text
from ivr.flow.model import Flow, Step
from ivr.flow.source import FlowError, Problem

__all__ = ["Flow", "FlowError", "LoadedFlow", "Problem", "Step", "load_flow", "load_flow_text"]
