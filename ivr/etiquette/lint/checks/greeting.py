"""E1 greeting: every way a call can begin greets, names the organisation and the agent,
and offers help; never a bare "喂" / "Hello?"."""
from __future__ import annotations

import re

from ivr.etiquette.lint.engine import Lint, check, step_texts
from ivr.etiquette.lint.rules import Rules, normal
from ivr.flow.model import Flow
from ivr.steps import KINDS

_NAME = re.compile(r"[\w\u3400-\u9fff]", re.UNICODE)


def openings(flow: Flow, limit: int = 200):
    """Each way a call can begin: (route, what is said before the first listening step,
    what that step says). Lookup, set, branch, say and callback steps are followed."""
    found = []

    def walk(name, route, on_route, said):
        step = flow.steps.get(name)
        if step is None or name in on_route or len(found) >= limit:
            return
        route, on_route = route + [name], on_route | {name}
        texts = step_texts(name, step, flow, opening=True)
        if not KINDS[step.kind].listens and step.kind not in ("record", "goodbye"):  # say, callback, lookup...
            for dest in dict.fromkeys(way.to for way in KINDS[step.kind].ways_out(step, flow)):
                walk(dest, route, on_route, said + texts)
        else:
            heard = texts
            if step.kind == "goodbye" and not texts:
                heard = [(("etiquette", "goodbye", "say"), flow.etiquette.goodbye.say)]
            found.append((route, said, heard))

    walk(flow.start, [], frozenset(), [])
    return found


def _named_after(rules: Rules, text: str, lead_ins: list[str]) -> bool:
    """A lead-in ("欢迎致电", "thank you for calling") followed by a name in plain text (not a
    generic "本行" / "our bank")."""
    low = normal(text)
    generic = tuple(normal(g) for g in rules.words("greeting", "not_a_name"))
    for phrase in lead_ins:
        for _, end in rules.find(text, phrase):
            rest = low[end:].lstrip(" ")
            if rest.startswith(generic):
                continue
            if rest.startswith("the "):
                rest = rest[4:]
            if len(_NAME.findall(rest[:2])) == 2 and not rest.startswith("{"):
                return True
    return False


def _named_before(rules: Rules, text: str, tail_ins: list[str]) -> bool:
    """A name in plain text right before a tail ("很高兴为您服务", "is glad to help")."""
    low = normal(text)
    for phrase in tail_ins:
        for start, _ in rules.find(text, phrase):
            before = low[:start].rstrip(" ")
            if len(_NAME.findall(before[-2:])) == 2 and not before.endswith("}"):
                return True
    return False


def _says_variable(rules: Rules, flow: Flow, text: str, which: str) -> bool:
    """`text` holds the flow's {org} / {agent} variable (as the rules name it), or that variable's value."""
    var = rules.section("greeting").get(f"{which}_variable", which)
    value = flow.variables.get(var, "")
    return "{" + var + "}" in text or bool(value and value in text)


def names_org(rules: Rules, flow: Flow, text: str) -> bool:
    if _says_variable(rules, flow, text, "org"):
        return True
    # the organisation spelled out in plain text after "欢迎致电" / "thank you for calling"
    return _named_after(rules, text, rules.words("greeting", "org_lead_ins"))


def names_agent(rules: Rules, flow: Flow, text: str) -> bool:
    if _says_variable(rules, flow, text, "agent"):
        return True
    return (_named_after(rules, text, rules.words("greeting", "agent_lead_ins"))
            or _named_before(rules, text, rules.words("greeting", "agent_tail_ins")))


@check
def e1_greeting(lint: Lint) -> None:
    rules, flow = lint.rules, lint.flow
    g = rules.section("greeting")
    example = g.get("example", "")
    org_var, agent_var = g.get("org_variable", "org"), g.get("agent_variable", "agent")
    for route, said, listening in openings(flow):
        heard = said + listening
        if not heard:
            continue
        where, first = heard[0]
        text = " ".join(t for _, t in heard)
        way = " → ".join(route)
        bare = rules.starts_with_any(first, rules.words("greeting", "bare_openings"))
        if bare:
            lint.report("E1", "bare-opening", "error", where,
                        f"the call opens with a bare \"{bare}\" (start → {way})", f"open with: {example}")
        if not rules.has_any(text, rules.words("greeting", "greet")):
            lint.report("E1", "greeting-no-hello", "error", where,
                        f"the opening does not greet the caller ({' / '.join(rules.words('greeting', 'greet'))}) "
                        f"(start → {way})", f"open with: {example}")
        if not names_org(rules, flow, text):
            org = flow.variables.get(org_var, "")
            lint.report("E1", "greeting-no-org", "error", where,
                        f"the opening does not name the organisation (start → {way})",
                        f"say {{{org_var}}} ({org}) in the greeting, e.g. {example}" if org else
                        f"name the organisation (or define variables.{org_var} and say {{{org_var}}}), "
                        f"e.g. {example}")
        if not rules.has_any(text, rules.words("greeting", "offer_help")):
            lint.report("E1", "greeting-no-offer", "error", where,
                        f"the opening does not offer help (start → {way})", f"end the greeting like: {example}")
        if not names_agent(rules, flow, text):
            lint.report("E1", "greeting-no-agent", "warning", where,
                        f"the opening does not say who is serving the caller (start → {way})",
                        f"say {{{agent_var}}} in the greeting, e.g. {example}")
