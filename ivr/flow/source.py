"""Read a YAML file into plain data plus a map of where every value stands.

PyYAML alone loses line numbers and silently accepts traps that ops staff fall
into: a duplicated key (the second one wins without a word), a key such as
`on:` or `yes:` that YAML 1.1 turns into a boolean, a Chinese comma inside
`[...]` that makes two words one. All are errors here, reported with
file:line:col like every other flow error, in plain words: no PyYAML message
reaches an ops user.

Flow files are untrusted input (a browser console lets ops edit them), so the
reader is bounded: the file's size, the nesting depth, the length of one value
and of a number are capped, and anchors, aliases (`&x`, `*x`, the "billion
laughs"), merge keys (`<<:`) and tags (`!!python/...`) are refused outright;
a flow never needs them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path as FilePath

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

Path = tuple  # a path into the data: ("steps", "menu", "options", 0, "go")

MAX_FLOW_BYTES = 2_000_000  # a 10,000-step flow is ~1.1 MB; ~1.3 s to load at this size
MAX_DEPTH = 40  # the deepest shipped flow nests 6 levels
MAX_SCALAR_CHARS = 20_000  # one text; Twilio speaks at most 4,096 characters per <Say>
MAX_NUMBER_CHARS = 30  # a number longer than this is a phone number or text left unquoted


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
    # Path -> the text as written, for plain (unquoted) values YAML read as a number, a date...:
    # `keys: 012` is the number 10, `to: +8610...` loses its '+'; the loader says "quote it"
    literals: dict = field(default_factory=dict)
    key_positions: dict = field(default_factory=dict)  # Path -> (line, col) of the key itself

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


_STR = "tag:yaml.org,2002:str"
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")}
_FULL_WIDTH_COMMAS = "，、"


class _Refused(Exception):
    def __init__(self, mark, message: str):
        self.mark, self.message = mark, message


class _Bounded:
    """PyYAML's composer with the limits of an untrusted file: no anchors or aliases (so no
    exponential expansion), a bounded depth (no RecursionError) and bounded values."""

    _depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(event.start_mark, f"'*{event.anchor}' is a YAML alias (a reference to '&{event.anchor}'); "
                           "flows do not use them: write the value out (a '*' key must be in quotes: \"*\")")
        if getattr(event, "anchor", None):
            raise _Refused(event.start_mark, f"'&{event.anchor}' is a YAML anchor; flows do not use anchors "
                           "or aliases: write each value out where it is used")
        if isinstance(event, yaml.ScalarEvent) and len(event.value) > MAX_SCALAR_CHARS:
            raise _Refused(event.start_mark, f"this value is {len(event.value):,} characters long; "
                           f"a text in a flow is at most {MAX_SCALAR_CHARS:,} characters: shorten it")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(event.start_mark, f"the settings here are nested more than {MAX_DEPTH} levels "
                               "deep; a flow needs no more than a few: check the indentation and brackets")
            return Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1


class _Loader(_Bounded, yaml.SafeLoader):
    """Pure Python: slow, but its error messages are the ones _syntax() knows how to explain."""


try:
    from yaml._yaml import CParser
except ImportError:  # no libyaml: the pure-Python loader does it all
    _FastLoader = None
else:
    class _FastLoader(_Bounded, CParser, SafeConstructor, Resolver):
        """libyaml's parser (~25x faster) under the same bounded composer; on any error the file is
        read again by _Loader, for PyYAML's messages."""

        def __init__(self, text: str):
            CParser.__init__(self, text)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self.anchors = {}

        compose_scalar_node = Composer.compose_scalar_node
        compose_sequence_node = Composer.compose_sequence_node
        compose_mapping_node = Composer.compose_mapping_node
        compose_document = Composer.compose_document
        get_single_node = Composer.get_single_node


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.positions: dict = {}
        self.literals: dict = {}
        self.keys: dict = {}
        self.problems: list[Problem] = []

    def add(self, mark, message: str) -> None:
        self.problems.append(Problem(self.file, mark.line + 1, mark.column + 1, message))

    def build(self, node, path):
        """Recursive: the composer has capped the depth already."""
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self.add(node.start_mark, _tag_message(node.tag))
            if node.flow_style:
                self._full_width_commas(node.value)
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def _mapping(self, node, path):
        if node.tag != "tag:yaml.org,2002:map":
            self.add(node.start_mark, _tag_message(node.tag))
        if node.flow_style:
            self._full_width_commas([v for pair in node.value for v in pair])
            self._split_by_comma(node)
        out = {}
        for key_node, value_node in node.value:
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.add(key_node.start_mark, "'<<' (a YAML merge key) is not used in flows; "
                         "write the settings out here")
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.add(key_node.start_mark, "a key must be a plain word or number; "
                         "write 'name: value', with text that contains '?', '[' or '{' in quotes")
                continue
            key = self.scalar(key_node, None)
            if isinstance(key, bool):
                word = key_node.value
                self.add(key_node.start_mark,
                         f"the key '{word}' is read by YAML as the boolean {key}; put it in quotes ('{word}':) "
                         f"or use another word")
                key = word
            elif key is None or not isinstance(key, str):
                key = key_node.value  # `+8613800138000:` or `012:` as keys mean the text as written
            if key in out:
                first = self.positions.get(path + (key,), ("?", "?"))
                self.add(key_node.start_mark,
                         f"'{key}' is defined twice (first at line {first[0]}); names must be unique")
                continue
            self.keys[path + (key,)] = where
            out[key] = self.build(value_node, path + (key,))
            self.positions[path + (key,)] = where if not isinstance(value_node, yaml.ScalarNode) else (
                value_node.start_mark.line + 1, value_node.start_mark.column + 1)
        return out

    def _full_width_commas(self, nodes) -> None:
        """`[余额，账户]` is one word to YAML: the Chinese comma does not separate items."""
        for item in nodes:
            if isinstance(item, yaml.ScalarNode) and not item.style and any(c in item.value for c in _FULL_WIDTH_COMMAS):
                i = min(item.value.index(c) for c in _FULL_WIDTH_COMMAS if c in item.value)
                comma = item.value[i]
                where = yaml.Mark("", 0, item.start_mark.line, item.start_mark.column + i, None, None)
                self.add(where, f"a Chinese comma '{comma}' inside [...] or {{...}} does not separate items, "
                         f"so '{item.value}' is read as one; YAML needs ',' (an ordinary comma), "
                         f"or quotes if the comma belongs to the text")

    def _split_by_comma(self, node) -> None:
        """`{reason: 我需要查询,大约一分钟, ask: ...}`: the ',' ends the text and '大约一分钟' becomes a
        setting of its own, with no value."""
        previous = None
        for key_node, value_node in node.value:
            orphan = (isinstance(key_node, yaml.ScalarNode) and not key_node.style and key_node.value
                      and isinstance(value_node, yaml.ScalarNode) and value_node.value == ""
                      and value_node.start_mark.index == value_node.end_mark.index
                      and previous is not None and previous.start_mark.line == key_node.start_mark.line)
            if orphan:
                self.add(previous.start_mark,
                         f"the ',' after '{previous.value}' inside {{...}} ends the text, so '{key_node.value}' "
                         f"became a setting of its own; quote this text: \"{previous.value},{key_node.value}\"")
            previous = value_node if isinstance(value_node, yaml.ScalarNode) and not value_node.style else None

    def scalar(self, node, path):
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag not in _PLAIN_TAGS:
            self.add(node.start_mark, _tag_message(tag))
            return node.value
        if tag == "tag:yaml.org,2002:timestamp":  # `version: 2026-11-01`: the text as written
            return node.value
        if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and len(node.value) > MAX_NUMBER_CHARS:
            self.add(node.start_mark, f"a number {len(node.value):,} characters long cannot be a setting; "
                     f"if it is text, put it in quotes")
            return node.value
        try:
            value = _CONSTRUCTOR.construct_object(node)
        except (ValueError, yaml.YAMLError):
            self.add(node.start_mark, f"'{node.value[:40]}' cannot be read as a value; put it in quotes")
            return node.value
        if path is not None and not node.style and value is not None:
            self.literals[path] = node.value
        return value


def _tag_message(tag: str) -> str:
    short = tag.replace("tag:yaml.org,2002:", "!!")
    return f"'{short}' is a YAML tag; flows do not use tags: remove it (put the value in quotes if it is text)"


_CONSTRUCTOR = yaml.SafeLoader("")


# --- what PyYAML cannot read, in plain words ------------------------------------------------

_INDENT = re.compile(r"^([ \t\u3000]*)")
# a line that is `key:` or `- ...` after its indentation: the indentation is structure, not text
_STRUCTURE = re.compile(r"(?:-[ \u3000]|[^\s:：#\"'][^:：#]{0,40}?\s*[:：](?:\s|$))")
# `say：您好` / `- {keys： "1"}`: an ASCII word and a Chinese colon where a key ends
_ASCII_KEY_CN_COLON = re.compile(r"(?:^[ \t\u3000]*(?:-[ \u3000]+)?|[{,][ \u3000]*)([A-Za-z_][\w-]*)[ \u3000]*(：)")
_ANY_KEY_CN_COLON = re.compile(r"(?:^[ \t\u3000]*(?:-[ \u3000]+)?|[{,][ \u3000]*)([^\s:：#\"'{}\[\],]{1,40}?)[ \u3000]*(：)")


def _typography(text: str, parsed: bool) -> list[tuple[int, int, str]]:
    """Characters from a Chinese keyboard (or a tab) where YAML needs its own: (line, col, message).
    With `parsed`, only what is certain (the file read fine); else also what probably broke it."""
    if "\t" not in text and "\u3000" not in text and "：" not in text:
        return []
    out = []
    for number, line in enumerate(text.split("\n"), 1):
        indent = _INDENT.match(line).group(1)
        rest = line[len(indent):]
        if indent and rest and _STRUCTURE.match(rest):
            if "\t" in indent:
                out.append((number, indent.index("\t") + 1, "a tab character indents this line; "
                            "YAML needs spaces: indent with spaces only (set the editor to insert spaces)"))
            elif "\u3000" in indent:
                out.append((number, indent.index("\u3000") + 1,
                            "full-width spaces ('\u3000', from a Chinese keyboard) indent this line; "
                            "YAML needs ordinary spaces: retype the indentation with the space bar in English mode"))
        if "：" in line:
            for match in (_ASCII_KEY_CN_COLON if parsed else _ANY_KEY_CN_COLON).finditer(line):
                before = line[:match.start(2)]
                if ":" in before.replace("http:", "").replace("https:", ""):
                    break  # an ordinary colon came first: the '：' is in the text
                col = match.start(2) + 1
                out.append((number, col, f"a Chinese colon '：' at {number}:{col}; YAML needs ':' "
                            f"(an ordinary colon, then a space): {match.group(1)}: ..."))
                break
    return out


_PROBLEMS = [  # PyYAML's words -> ours
    ("mapping values are not allowed", "a ':' here is not allowed: text that contains ': ' must be in quotes, "
                                       "or this line is indented wrongly"),
    ("expected <block end>", "this line does not line up with the lines above it; check its indentation"),
    ("could not find expected ':'", "a line here is not 'name: value'; add the ':' (an ordinary colon, "
                                    "then a space), or put the text in quotes"),
    ("found character '\\t'", "a tab character; YAML needs spaces: indent with spaces only"),
    ("expected a single document", "the file holds more than one YAML document ('---'); a flow file holds one flow"),
    ("expected ',' or ']'", "inside [...] items are separated by ', '; put an item that contains ':', "
                            "'[' or '{' in quotes"),
    ("expected ',' or '}'", "inside {...} settings are separated by ', '; quote this text if it contains "
                            "',', ':', '?', '[' or '{'"),
    ("did not find expected '-'", "a list item here does not start with '- ' like the ones above it; "
                                  "check its indentation"),
    ("did not find expected key", "this line does not line up with the lines above it; check its indentation"),
    ("did not find expected node content", "a value is missing here; write it after the ': '"),
    ("that cannot start any token", "text cannot start with this character; put the text in quotes"),
    ("found undefined alias", "a value cannot start with '*' unquoted; put it in quotes (\"*\")"),
    ("while scanning an alias", "a value cannot start with '*' unquoted; put it in quotes (\"*\")"),
    ("while scanning an anchor", "a value cannot start with '&' unquoted; put it in quotes"),
    ("found unknown escape character", "a '\\' in double quotes starts an escape; use single quotes, or write '\\\\'"),
]


def _syntax(text: str, exc: yaml.MarkedYAMLError) -> tuple[int, int, str]:
    """Where the YAML stops making sense, and why, in our words."""
    mark = exc.problem_mark or exc.context_mark
    if exc.context in ("while scanning an alias", "while scanning an anchor") and exc.context_mark:
        mark = exc.context_mark  # the '*' or '&' itself
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    what = f"{exc.context or ''} {exc.problem or ''}"
    lines = text.split("\n")
    quote = _unclosed_quote(text, exc)
    if quote:
        return quote
    if "'?'" in (exc.problem or "") and "flow" in (exc.context or ""):
        return (line, col, f"a '?' inside {{...}} or [...] cannot stand unquoted; quote this text: "
                           f"\"{_entry_text(lines[line - 1], col - 1)}\"")
    if any(w in what for w in ("mapping values", "block end", "expected key", "expected '-'", "expected ':'")):
        at = line if "expected ':'" not in what or not exc.context_mark else exc.context_mark.line + 1
        found = _indentation(lines, at - 1)
        if found:
            return found
    for words, ours in _PROBLEMS:
        if words in what:
            return (line, col, ours)
    return (line, col, "the YAML cannot be read here; check the indentation and that text with ':', '#', "
                       "'?', '[' or '{' is in quotes")


def _entry_text(line: str, col: int) -> str:
    """The text of the {...} entry around column `col`: from after its ': ' to the next ', ' or '}'."""
    start = max(line.rfind(": ", 0, col) + 2, line.rfind("{", 0, col) + 1, line.rfind("[", 0, col) + 1,
                line.rfind(", ", 0, col) + 2)
    ends = [i for i in (line.find(", ", col), line.find("}", col), line.find("]", col)) if i >= 0]
    return line[start:min(ends) if ends else len(line)].strip()


def _unclosed_quote(text: str, exc) -> tuple[int, int, str] | None:
    """A quote opened and never closed on its line swallows the lines after it; the error shows up
    lines later. Point at the quote that opens it."""
    if exc.context == "while scanning a quoted scalar" and exc.context_mark:
        m = exc.context_mark
        mark = text[m.index] if m.index < len(text) else '"'
        return (m.line + 1, m.column + 1, f"this quote ({mark}) is never closed; end the text with {mark} on this line")
    stop = exc.problem_mark.line if exc.problem_mark else 1 << 30
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.line >= stop:
                break
            if (isinstance(token, yaml.ScalarToken) and token.style in ('"', "'")
                    and token.end_mark.line > token.start_mark.line
                    and re.search(r"\n\s*(?:- )?[\w-]+:\s", text[token.start_mark.index:token.end_mark.index])):
                m = token.start_mark
                return (m.line + 1, m.column + 1, f"this quote ({token.style}) is not closed on its line, so "
                        f"the lines after it became part of the text; end the text with {token.style} on this line")
    except yaml.YAMLError:
        pass
    return None


def _indentation(lines: list[str], index: int) -> tuple[int, int, str] | None:
    """A key that lines up with nothing above it: which step it is in, where it should be, how far off."""
    if index >= len(lines) or not lines[index].strip():
        return None
    here = len(lines[index]) - len(lines[index].lstrip(" "))
    stack: list[tuple[int, str, int]] = []  # (indent, key, line number) of the open levels above
    for number in range(index):
        raw = lines[number]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        while stack and stack[-1][0] > indent:
            stack.pop()
        key = re.match(r"(?:-\s+)?([^:#\s][^:#]*?)\s*:(?:\s|$)", stripped)
        entry = (indent, key.group(1).strip("\"'") if key else stripped[:20], number + 1)
        if stack and stack[-1][0] == indent:
            stack[-1] = entry
        else:
            stack.append(entry)
    levels = [s[0] for s in stack]
    if not stack or here in levels:
        return None
    key = re.match(r"(?:-\s+)?([^:#\s][^:#]*?)\s*:", lines[index].strip())
    name = f"'{key.group(1)}'" if key else "this line"
    shallower = [s for s in stack if s[0] < here]
    deeper = [s for s in stack if s[0] > here]
    # the nearest level; a tie goes to the block just above (the deeper one)
    target = min(stack, key=lambda s: (abs(s[0] - here), -s[0]))
    step = next((stack[i + 1][1] for i in range(len(stack) - 1)
                 if stack[i][1] == "steps" and stack[i][0] == 0 and stack[i + 1][0] <= target[0]), None)
    inside = f" in step '{step}'" if step and target[0] > levels[1 if len(levels) > 1 else 0] else ""
    if step and target[0] == stack[1][0] and stack[0][1] == "steps":
        inside = " as a step of its own"
    move = target[0] - here
    how = f"{abs(move)} space{'s' if abs(move) != 1 else ''} {'further right' if move > 0 else 'further left'}"
    other = ""
    if shallower and deeper:
        alt = shallower[-1] if target in deeper else deeper[0]
        other = f" (or {alt[0]} spaces, like '{alt[1]}' on line {alt[2]})"
    return (index + 1, here + 1,
            f"wrong indentation: {name} is indented {here} spaces, which lines up with nothing above it; "
            f"to keep it{inside}, "
            f"indent it {target[0]} spaces like '{target[1]}' on line {target[2]}: move it {how}{other}")


def read_bounded(path: FilePath, limit: int = MAX_FLOW_BYTES, what: str = "flow .yaml file") -> str:
    """The text of a regular file of at most `limit` bytes, as UTF-8; FlowError otherwise.
    Never reads more than `limit` bytes (a device such as /dev/zero never ends)."""
    file = str(path)
    try:
        if not path.is_file():
            message = ("no such file" if not path.exists() else "this is not a regular file (a folder or a device)")
            raise FlowError([Problem(file, 1, 1, f"{message}; give the path of a {what}")])
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise FlowError([Problem(file, 1, 1, f"cannot read the file ({exc.strerror}); give the path of a {what}")]) from None
    if len(data) > limit:
        raise FlowError([Problem(file, 1, 1, f"the file is larger than {limit:,} bytes; a {what} is at most that: "
                                             f"split it")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FlowError([Problem(file, 1, 1, f"not UTF-8 text ({exc.reason}); save the file as UTF-8")]) from None


_FAILED = object()


def _fast_compose(text: str):
    """The node tree by libyaml; _FAILED if it is absent or finds an error (then the slow loader explains)."""
    if _FastLoader is None:
        return _FAILED
    loader = _FastLoader(text)
    try:
        return loader.get_single_node()
    except _Refused:
        raise
    except Exception:  # noqa: BLE001 - any complaint: read again with the loader whose words we know
        return _FAILED
    finally:
        loader.dispose()


def read_yaml(text: str, file: str = "<flow>") -> Source:
    """Parse YAML text; raise FlowError with positions for anything malformed."""
    if len(text) > MAX_FLOW_BYTES:
        raise FlowError([Problem(file, 1, 1, f"the file is {len(text):,} characters long; a flow file is at most "
                                             f"{MAX_FLOW_BYTES:,}: split it into several flows")])
    builder = _Builder(file)
    loader = None
    try:
        root = _fast_compose(text)
        if root is _FAILED:
            loader = _Loader(text)
            root = loader.get_single_node()
    except _Refused as exc:
        raise FlowError([Problem(file, exc.mark.line + 1, exc.mark.column + 1, exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        found = _typography(text, parsed=False)
        stop = (exc.problem_mark.line + 1) if exc.problem_mark else 1 << 30
        before = [t for t in found if t[0] <= stop]  # the likely cause is at or above where YAML stopped
        raise FlowError([Problem(file, *t) for t in (before or [_syntax(text, exc)])]) from None
    except yaml.YAMLError:
        raise FlowError([Problem(file, 1, 1, "the file cannot be read as YAML; check that it is a flow "
                                             "file saved as text")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    for line, col, message in _typography(text, parsed=True):
        builder.problems.append(Problem(file, line, col, message))
    if root is None:
        raise FlowError([Problem(file, 1, 1, "the file is empty (or only comments); a flow needs at least "
                                             "name:, language:, start:, and steps:")])
    data = builder.build(root, ())
    if builder.problems:
        raise FlowError(builder.problems)
    return Source(file=file, text=text, data=data, positions=builder.positions, literals=builder.literals,
                  key_positions=builder.keys)
