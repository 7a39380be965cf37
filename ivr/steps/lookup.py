"""`lookup`: find the caller in a directory by their number (E8: address them by name)."""
from __future__ import annotations

import stat
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

from pydantic import Field

from ivr.call import facts
from ivr.flow.types import Strict
from ivr.steps.base import Kind, Way, register


class Lookup(Strict):
    directory: str = Field(description="YAML file next to the flow: phone number -> fields")
    key: Literal["caller"] = "caller"
    set: dict[str, str] = Field(description="variable name -> field of the directory entry")


MAX_DIRECTORY_BYTES = 1_000_000  # ~10,000 callers
MAX_DIRECTORY_ENTRIES = 100_000


def read_directory(flow_file: str, name: str, source, at: tuple) -> tuple[dict, list]:
    """The caller directory a lookup names, read once when the flow loads: a regular YAML file of
    at most MAX_DIRECTORY_BYTES inside the flow's folder (no absolute path, no '..', no link out
    of the folder, no device such as /dev/zero), mapping phone numbers to fields.
    (data, problems); the data is {} when there are problems."""
    from ivr.flow.source import FlowError, read_bounded, read_yaml

    def refuse(message: str):
        return {}, [source.problem(at, message)]

    right = "name a .yaml file in the flow's own folder, e.g. directory: callers.yaml"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        return refuse(f"the directory file '{name}' is an absolute path; {right}")
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return refuse(f"the directory file '{name}' goes up out of the flow's folder ('..'); {right}")
    folder = Path(flow_file).parent.resolve()
    path = (folder / name).resolve()
    if not path.exists():
        return refuse(f"the directory file '{name}' does not exist next to the flow; {right}")
    if folder != path and folder not in path.parents:
        return refuse(f"the directory file '{name}' is a link to a file outside the flow's folder; {right}")
    if not stat.S_ISREG(path.stat().st_mode):
        return refuse(f"the directory file '{name}' is not a regular file; {right}")
    try:
        text = read_bounded(path, MAX_DIRECTORY_BYTES, "caller directory .yaml file")
    except FlowError as exc:
        why = exc.problems[0].message.partition(";")[0].removeprefix("the file ")
        return refuse(f"the directory file '{name}' cannot be used: it {why}; {right}")
    try:
        directory = read_yaml(text, str(Path(flow_file).parent / name))
    except FlowError as exc:  # its own mistakes, at their lines in the directory file
        return {}, exc.problems
    data = directory.data
    if not isinstance(data, dict) or len(data) > MAX_DIRECTORY_ENTRIES:
        return refuse(f"the directory file '{name}' is not a list of callers; write one line per caller: "
                      f"\"+8613800138000\": {{surname: 张, title: 先生}}")
    out, problems = {}, []
    for number, entry in data.items():
        if not isinstance(entry, dict) or any(isinstance(v, (dict, list)) for v in entry.values()):
            problems.append(directory.problem((number,), f"the entry of {number} is not a set of fields; "
                                                         f"write it like {{surname: 张, title: 先生}}"))
            continue
        out[str(number)] = {str(k): "" if v is None else str(v) for k, v in entry.items()}
    return ({}, problems) if problems else (out, [])


@register
class LookupKind(Kind):
    goes_on = True
    name, spec, icon, fill = "lookup", Lookup, "🔎", "#eeeeee"
    description = "look the caller up by phone number and set variables from their entry"

    def ways_out(self, step, flow):
        return [Way(step.next, "found or not", ("next",))]

    def facts(self, spec, step, flow):
        return f"silent: looks the caller up in {spec.directory}"

    def enter(self, run, spec):
        entry = run.engine.directory(spec.directory).get(run.state.caller) or {}  # read at load, never here
        for var, field in spec.set.items():
            run.state.variables[var] = str(entry.get(field, ""))
        run.note(facts.LookedUp("caller", known=bool(entry)))
        run.goto(run.step.next)
