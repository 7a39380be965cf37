"""The rules data of a language (ivr/etiquette/rules/<language>.yaml, which ops may extend,
plus an optional extra rules file): word lists, settings, and how phrases are matched."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import yaml

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"


class RulesError(Exception):
    """A rules file that cannot be used; reported as a `load` finding on that file."""

    def __init__(self, file: str, message: str):
        self.file, self.message = file, message
        super().__init__(f"{file}: {message}")


def normal(text: str) -> str:
    """Full-width punctuation as ASCII, curly apostrophes straight, lower case."""
    return unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'").lower()


class Rules:
    """The rules data of one language: word lists, and how phrases are matched."""

    def __init__(self, language: str, data: dict):
        self.language = language
        self.data = data
        self.whole_words = data.get("match") == "words"
        self._patterns: dict[str, re.Pattern | None] = {}

    def section(self, key: str) -> dict:
        value = self.data.get(key)
        return value if isinstance(value, dict) else {}

    def words(self, *keys: str) -> list[str]:
        value = self.data
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return [str(v) for v in value or [] if v is not None]

    def number(self, section: str, key: str, default: float) -> float:
        value = self.section(section).get(key, default)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    def _pattern(self, phrase: str) -> re.Pattern | None:
        if phrase not in self._patterns:
            p = normal(phrase).strip()
            if not p:
                self._patterns[phrase] = None
            elif self.whole_words:
                self._patterns[phrase] = re.compile(
                    r"(?<!\w)" + r"\s+".join(re.escape(w) for w in p.split()) + r"(?!\w)")
            else:
                self._patterns[phrase] = re.compile(re.escape(p))
        return self._patterns[phrase]

    def find(self, text: str, phrase: str) -> list[tuple[int, int]]:
        """Spans of `phrase` in `text` (both normalised; whole words in English)."""
        return self.find_normal(normal(text), phrase)

    def find_normal(self, text: str, phrase: str) -> list[tuple[int, int]]:
        """`find` in a text already normalised (many phrases looked for in one prompt)."""
        pattern = self._pattern(phrase)
        if pattern is None:
            return []
        word = self._first_word(phrase)
        if word not in text:  # most phrases are not in most prompts: a substring test says so quickly
            return []
        return [m.span() for m in pattern.finditer(text)]

    def _first_word(self, phrase: str) -> str:
        p = normal(phrase).strip()
        return p.split()[0] if self.whole_words and p else p

    def has_any(self, text: str, phrases: list[str]) -> bool:
        return any(self.find(text, p) for p in phrases)

    def starts_with_any(self, text: str, phrases: list[str]) -> str | None:
        lead = len(normal(text)) - len(normal(text).lstrip())
        return next((p for p in phrases if any(start == lead for start, _ in self.find(text, p))), None)


def combine(base, more):
    """Dicts merge key by key, lists are added together, anything else is replaced."""
    if isinstance(base, dict) and isinstance(more, dict):
        out = dict(base)
        for key, value in more.items():
            out[key] = combine(out[key], value) if key in out else value
        return out
    if isinstance(base, list) and isinstance(more, list):
        return base + [v for v in more if v not in base]
    return more


def read_rules(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(str(path), "no such rules file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RulesError(str(path), f"the rules file cannot be read: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RulesError(str(path), "a rules file is a mapping (wording:, greeting:, goodbye: ...)")
    for category, spec in (data.get("wording") or {}).items():
        for phrase in (spec or {}).get("phrases") or []:
            if not isinstance(phrase, (str, int, float)) and not (isinstance(phrase, dict) and "phrase" in phrase):
                raise RulesError(str(path), f"wording.{category}: {phrase!r} is not a phrase; write text, "
                                            f"or {{phrase: ..., rule: E13, fix: ...}}")
    return data


def load_rules(language: str, extra: str | None = None) -> Rules:
    """The built-in rules of a language, with an extra rules file's lists added."""
    own = RULES_DIR / f"{language}.yaml"
    data = read_rules(own) if own.exists() else {}
    if extra:
        more = read_rules(Path(extra))
        if more.get("language") in (None, language):
            data = combine(data, {k: v for k, v in more.items() if k != "language"})
    return Rules(language, data)
