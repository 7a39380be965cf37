"""E13 wording (forbidden, informal, refusals, promises, aggression, private questions,
jargon; polite questions) and E8 addressing the caller by surname with a title."""
from __future__ import annotations

import re

from ivr.etiquette.lint.engine import Lint, check, dotted
from ivr.etiquette.lint.rules import normal

_VARIABLE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


def _phrases(spec: dict) -> list[dict]:
    out = []
    for item in spec.get("phrases") or []:
        out.append(dict(item) if isinstance(item, dict) else {"phrase": str(item)})
    return out


@check
def e13_wording(lint: Lint) -> None:
    rules, flow = lint.rules, lint.flow
    categories = dict(rules.section("wording"))
    if flow.jargon:
        jargon = dict(categories.get("jargon") or {"rule": "E13", "name": "jargon", "severity": "error",
                                                  "what": "jargon", "fix": "say it in everyday words"})
        jargon["phrases"] = list(jargon.get("phrases") or []) + list(flow.jargon)
        categories["jargon"] = jargon
    specs = [(spec or {}, sorted(_phrases(spec or {}), key=lambda e: -len(str(e["phrase"]))))
             for spec in categories.values()]
    polite = rules.section("polite_question")
    markers = rules.words("polite_question", "markers")
    seen: dict[str, list] = {}   # the same text (a menu prompt repeated in many steps) is searched once
    for path, raw in lint.prompts:
        text = _VARIABLE.sub(" ", raw)  # {variables} are names, not words the caller hears
        if text not in seen:
            ntext = normal(text)
            hits = []
            for spec, entries in specs:
                taken: list[tuple[int, int]] = []
                for entry in entries:
                    phrase = str(entry["phrase"])
                    spans = [s for s in rules.find_normal(ntext, phrase)
                             if not any(s[0] < e and b < s[1] for b, e in taken)]
                    if spans:
                        taken += spans
                        hits.append((spec, entry, phrase))
            questions = [q for q in re.findall(r"[^?!.;。]*\?", ntext)
                         if markers and not rules.has_any(q, markers)]
            seen[text] = [hits, questions]
        hits, questions = seen[text]
        for spec, entry, phrase in hits:
            lint.report(str(entry.get("rule") or spec.get("rule", "E13")), spec.get("name", "wording"),
                        entry.get("severity") or spec.get("severity", "error"), path,
                        f"{spec.get('what', 'wording')}: \"{phrase}\" in {dotted(path)}",
                        entry.get("fix") or spec.get("fix", "reword it"))
        for question in questions:
            lint.report(polite.get("rule", "E13"), polite.get("name", "impolite-question"),
                        polite.get("severity", "warning"), path,
                        f"the question \"{question.strip()}\" in {dotted(path)} is not asked politely "
                        f"({' / '.join(markers)})", polite.get("fix", "ask politely"))


@check
def e8_address(lint: Lint) -> None:
    spec = lint.rules.section("address")
    var = spec.get("variable", "surname")
    after = [normal(t) for t in lint.rules.words("address", "titles_after")]
    before = [normal(t) for t in lint.rules.words("address", "titles_before")]
    needle = "{" + var + "}"
    for path, text in lint.prompts:
        if needle not in text:
            continue
        for m in re.finditer(re.escape(needle), text):
            following = normal(text[m.end():]).lstrip()
            preceding = normal(text[:m.start()]).rstrip()
            if any(following.startswith(t) for t in after) or any(preceding.endswith(t) for t in before):
                continue
            titles = " / ".join(lint.rules.words("address", "titles_after") + lint.rules.words("address", "titles_before"))
            lint.report("E8", "surname-without-title", "warning", path,
                        f"{{{var}}} in {dotted(path)} is said without a title",
                        f"address the caller with a title: {titles}")
