"""Read a YAML file into plain data plus a map of where every value stands.

PyYAML alone loses line numbers and silently accepts two traps that ops staff
fall into: a duplicated key (the second one wins without a word) and a key
such as `on:` or `yes:` that YAML 1.1 turns into a boolean. Both are errors
here, reported with file:line:col like every other flow error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import yaml

Path = tuple  # a path into the data: ("steps", "menu", "options", 0, "go")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class FlowError(Exception):
    """One or more problems a person must fix in a flow file."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.col))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Source:
    """The data of one YAML file and the position of each value in it."""

    file: str
    text: str
    data: object
    positions: dict = field(default_factory=dict)  # Path -> (line, col), 1-based

    def where(self, path: Path) -> tuple[int, int]:
        """Position of `path`, or of its nearest ancestor that exists in the file."""
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def problem(self, path: Path, message: str) -> Problem:
        line, col = self.where(path)
        return Problem(self.file, line, col, message)


_BOOL_WORDS = {"on", "off", "yes", "no", "y", "n", "true", "false"}


def _build(node, path, file, positions, problems):
    positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if isinstance(key, bool):
                word = key_node.value
                problems.append(Problem(file, *where,
                    f"the key '{word}' is read by YAML as the boolean {key}; put it in quotes ('{word}':) "
                    f"or use another word"))
                key = word
            if not isinstance(key, (str, int)):
                problems.append(Problem(file, *where, "a key must be a plain word or number"))
                continue
            if key in out:
                first = positions.get(path + (key,), ("?", "?"))
                problems.append(Problem(file, *where,
                    f"'{key}' is defined twice (first at line {first[0]}); names must be unique"))
                continue
            out[key] = _build(value_node, path + (key,), file, positions, problems)
            positions[path + (key,)] = where if not isinstance(value_node, yaml.ScalarNode) else (
                value_node.start_mark.line + 1, value_node.start_mark.column + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), file, positions, problems) for i, item in enumerate(node.value)]
    return _scalar(node)


_CONSTRUCTOR = yaml.SafeLoader("")


def _scalar(node):
    return node.value if node.tag == "tag:yaml.org,2002:str" else _CONSTRUCTOR.construct_object(node)


def read_yaml(text: str, file: str = "<flow>") -> Source:
    """Parse YAML text; raise FlowError with positions for anything malformed."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "the YAML cannot be read"
        raise FlowError([Problem(file, line, col,
            f"YAML syntax: {what}; check the indentation and that text with ':' or '#' is in quotes")]) from None
    except yaml.YAMLError as exc:
        raise FlowError([Problem(file, 1, 1, f"YAML syntax: {exc}")]) from None
    if root is None:
        raise FlowError([Problem(file, 1, 1, "the file is empty; a flow needs at least name, language and steps")])
    positions: dict = {}
    problems: list[Problem] = []
    data = _build(root, (), file, positions, problems)
    if problems:
        raise FlowError(problems)
    return Source(file=file, text=text, data=data, positions=positions)
