"""Prompt templates: text with bare `{name}` fields naming the flow's variables, and `{{`/`}}` for braces.

Flows are untrusted input, so a template is never a Python format string: `{0.__init__}` or
`{org.__doc__}` would speak internals, `{org:>100000000}` would build a 100 MB answer, and
`Hello {org`, `{org!z}` or `{org:d}` would pass validation and then fail on every call. The
loader checks every template with `problems()`; the engine renders with `render()`, a plain
substitution that cannot fail.
"""
from __future__ import annotations

import difflib
import re

BUILT_IN = {"caller": "the caller's phone number"}
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"^[^\W\d]\w*$")


def problems(text: str, known) -> list[str]:
    """What is wrong with a template, in words (each 'what is wrong; what is right')."""
    if "{" not in text and "}" not in text:
        return []
    out = []
    for match in _TOKEN.finditer(text):
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            continue
        if token == "{":
            out.append(f"the '{{' at character {match.start() + 1} is never closed; write {{name}} for a "
                       f"variable, or {{{{ for a brace the caller hears")
        elif token == "}":
            out.append(f"a lone '}}' at character {match.start() + 1}; write }}}} for a brace, or {{name}} "
                       f"for a variable")
        elif not name.strip():
            out.append("an empty '{}'; write {name} with a variable's name, or {{}} for braces")
        elif not _NAME.match(name.strip()):
            bare = re.match(r"\s*([^\W\d]\w*)", name)
            fix = f"{{{bare.group(1)}}}" if bare else "{name}"
            out.append(f"'{token}' is not a plain variable: a template takes only {{name}}, without '.', "
                       f"'[', ':' or '!'; write {fix} (or {{{{ and }}}} for braces the caller hears)")
        elif name.strip() not in known:
            close = difflib.get_close_matches(name.strip(), known, n=1)
            guess = f"did you mean {{{close[0]}}}? " if close else ""
            out.append(f"'{token}' names no variable of this flow; {guess}define it under variables:, in a "
                       f"set: or lookup step, or use one of: {', '.join(sorted(known))}")
    return out


def render(text: str, values: dict) -> str:
    """Substitute `{name}` fields (a missing one says nothing); `{{`/`}}` are braces; anything else
    is left as written. Linear in the text, no formatting, cannot raise."""
    if "{" not in text and "}" not in text:
        return text

    def one(match: re.Match) -> str:
        token, name = match.group(0), match.group(1)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        if name is not None and _NAME.match(name.strip()):
            return str(values.get(name.strip(), ""))
        return token

    return _TOKEN.sub(one, text)
