"""Issue 10/12: the mistakes ops staff make in a flow file, and files that are hostile. Each lands on
its line and column, in plain words with what would be right; none reaches anyone as a traceback."""
from __future__ import annotations

import time

import pytest

from ivr.flow import FlowError, load_flow_text
from test_flow_errors import GOOD


def problems(text: str):
    with pytest.raises(FlowError) as err:
        load_flow_text(text, "flow.yaml")
    return err.value.problems


def one(text: str, *words: str):
    """The problem whose message has all `words`: (line, col, message)."""
    found = problems(text)
    hits = [p for p in found if all(w in p.message for w in words)]
    assert hits, [str(p) for p in found]
    return hits[0].line, hits[0].col, hits[0].message


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --- a Chinese keyboard ---------------------------------------------------------------

def test_chinese_colon_after_a_key():
    text = edit("    next: menu", "    next：menu")
    line, col, msg = one(text, "Chinese colon '：'")
    assert (line, col) == (8, 9) and "a Chinese colon '：' at 8:9; YAML needs ':'" in msg


def test_chinese_colon_in_a_step_name_when_the_file_breaks():
    text = edit("  bye:\n", "  bye：\n")
    line, col, msg = one(text, "Chinese colon")
    assert (line, col) == (14, 6)


def test_chinese_colon_inside_the_text_is_fine():
    text = edit("    say: 您好,", "    say: 注意：您好,")
    assert load_flow_text(text, "flow.yaml").flow.steps["hello"].say.startswith("注意：")


def test_chinese_comma_in_a_list():
    text = edit("words: [查询]", "words: [查询，余额]")
    line, col, msg = one(text, "Chinese comma '，'")
    assert (line, col) == (13, 33) and "'查询，余额' is read as one" in msg and "YAML needs ','" in msg


def test_full_width_spaces_used_to_indent():
    text = edit("    next: menu", "\u3000\u3000next: menu")
    line, col, msg = one(text, "full-width spaces")
    assert (line, col) == (8, 1) and "ordinary spaces" in msg


def test_tab_used_to_indent():
    text = edit("    next: menu", "\tnext: menu")
    line, col, msg = one(text, "tab character")
    assert (line, col) == (8, 1) and "spaces" in msg


# --- YAML syntax --------------------------------------------------------------------------

def test_unclosed_quote_points_at_the_quote_that_opens_it():
    text = edit("    say: 您好,", '    say: "您好,')
    line, col, msg = one(text, "quote")
    assert (line, col) == (7, 10) and "not closed" in msg


def test_unclosed_quote_at_the_end_of_the_file():
    text = GOOD.replace("    goodbye: 感谢您的来电,再见!", '    goodbye: "感谢您的来电,再见!')
    line, col, msg = one(text, "never closed")
    assert (line, col) == (15, 14)


@pytest.mark.parametrize("indent, how", [(3, "1 space further right"), (5, "1 space further left")])
def test_bad_indentation_names_the_step_and_how_far(indent, how):
    text = edit("    next: menu", " " * indent + "next: menu")
    line, col, msg = one(text, "indentation")
    assert (line, col) == (8, indent + 1)
    assert "'next' is indented" in msg and "in step 'hello'" in msg and how in msg and "4 spaces" in msg


def test_comma_inside_braces_says_quote_this_text():
    text = edit('        - {keys: "1", words: [查询], go: bye}',
                '        - {keys: "1", words: [查询], go: bye}\n'
                '  wait:\n    hold: {reason: 我需要查询,大约一分钟, ask: "好吗?", limit: 1m}\n    next: bye')
    line, col, msg = one(text, "quote this text")
    assert line == 15 and "'大约一分钟' became a setting of its own" in msg and '"我需要查询,大约一分钟"' in msg


def test_question_mark_inside_braces_says_quote_this_text(monkeypatch):
    """libyaml (the fast path) reads `[查询吗?]` as the word 查询吗?; PyYAML alone refuses it, and then
    the message says what to do."""
    from ivr.flow import source

    text = edit('        - {keys: "1", words: [查询], go: bye}', '        - {keys: "1", words: [查询吗?], go: bye}')
    if source._FastLoader is not None:
        assert load_flow_text(text, "flow.yaml").flow.steps["menu"].menu.options[0].words == ["查询吗?"]
    monkeypatch.setattr(source, "_FastLoader", None)
    line, col, msg = one(text, "quote this text")
    assert (line, col) == (13, 34) and '"查询吗?"' in msg


def test_a_bare_star_key_says_quote_it():
    text = edit('{keys: "1"', "{keys: *")
    line, col, msg = one(text, "'*'")
    assert (line, col) == (13, 18) and 'quotes ("*")' in msg


# --- hostile files (issue 12, item 10) -------------------------------------------------------

def timed(text):
    start = time.perf_counter()
    found = problems(text)
    assert time.perf_counter() - start < 2
    return found


def test_billion_laughs_is_refused_at_once():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    (p,) = timed(bomb)
    assert (p.line, p.col) == (1, 4) and "anchor" in p.message


def test_deep_nesting_is_refused():
    (p,) = timed("steps: " + "[" * 5000 + "]" * 5000 + "\n")
    assert p.line == 1 and "nested more than" in p.message
    (p,) = timed("steps:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 200)))
    assert "nested more than" in p.message


def test_merge_keys_are_refused():
    text = edit("steps:\n", "defaults: {a: 1}\nmore:\n  <<: {b: 2}\nsteps:\n")
    line, col, msg = one(text, "merge key")
    assert (line, col) == (7, 3)


def test_a_huge_integer_is_refused():
    text = edit("name: tiny", "name: tiny\nversion: " + "9" * 10_000)
    line, col, msg = one(text, "10,000 characters long")
    assert line == 2


def test_a_huge_text_and_a_huge_file_are_refused():
    line, col, msg = one(edit("您好,", "您好" * 100_000), "characters long")
    assert line == 7
    (p,) = timed("# " + "x" * 2_000_000 + "\n" + GOOD)
    assert "at most 2,000,000" in p.message


def test_tags_are_refused():
    line, col, msg = one(edit("name: tiny", "name: !!python/object:os.system tiny"), "YAML tag")
    assert (line, col) == (1, 7)


# --- what the model refuses, in the flow's words ---------------------------------------------

TRANSFER = ('        - {keys: "1", words: [查询], go: bye}',
            '        - {keys: "1", words: [查询], go: agent}\n'
            '  agent:\n    transfer:\n      to: "+861095500001"\n      reason: 需要为您转接人工客服,\n'
            '      ask: 请问可以吗?\n      ring_limit: 30s\n    next: bye')


def test_misspelt_key_did_you_mean():
    text = edit(*TRANSFER).replace("ring_limit: 30s", "ring_limt: 30s")
    line, col, msg = one(text, "did you mean 'ring_limit'?")
    assert (line, col) == (19, 7) and "'ring_limt' is not a known setting" in msg


def test_a_step_kind_that_does_not_exist_lists_the_kinds():
    text = edit("    goodbye: 感谢您的来电,再见!", "    play: bye.wav")
    line, col, msg = one(text, "not a step kind")
    assert (line, col) == (15, 5)
    assert "say, menu, hold, transfer, record, lookup, set, branch, callback, goodbye" in msg
    line, col, msg = one(edit("    goodbye: 感谢您的来电,再见!", "    goodby: 再见"), "not a step kind")
    assert "did you mean 'goodbye'?" in msg


def test_keys_012_unquoted_says_quote_it():
    text = edit('{keys: "1"', "{keys: 012")
    line, col, msg = one(text, "quote it")
    assert (line, col) == (13, 18) and 'keys: "012"' in msg and "number 10" in msg


@pytest.mark.parametrize("old, new, literal", [
    ('to: "+861095500001"', "to: +861095500001", "+861095500001"),
    ("name: tiny", "name: tiny\nnumbers: [+861095500000]", "+861095500000"),
    ("name: tiny", "name: tiny\nvariables: {branch_code: 0123}", "0123"),
    ("name: tiny", "name: tiny\nfallback: {transfer_to: 861095500000}", "861095500000"),
])
def test_phone_numbers_and_variables_unquoted_say_quote_it(old, new, literal):
    text = edit(old, new, edit(*TRANSFER))
    line, col, msg = one(text, "quote it")
    assert line == next(i for i, t in enumerate(text.splitlines(), 1) if literal in t)
    assert f'"{literal}"' in msg


@pytest.mark.parametrize("text, words", [
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
    ("- a\n- b\n", "this file holds a list, not a flow"),
    ("hello\n", "this file holds the text 'hello', not a flow"),
    ('"+8613800138000": {surname: 张}\n', "caller directory"),
])
def test_empty_or_not_a_flow(text, words):
    (p,) = problems(text)
    assert words in p.message and (p.line, p.col) == (1, 1)


JARGON = ("Input should", "instance of", "String should", "List should", "type=", "For further information",
          "Field required", "Value error", "<block", "<scalar>", "Traceback", "validation error")

BROKEN = [
    edit("    next: menu\n", ""),  # say without next
    edit("    say: 您好,欢迎致电示范银行客户服务热线,请问有什么可以帮助您?\n", "    say:\n"),  # empty text
    edit("    say: 您好,欢迎致电示范银行客户服务热线,请问有什么可以帮助您?\n    next: menu\n", "    menu\n"),
    edit("  hello:\n", "  hello:\n  next: menu\n"),
    edit("    goodbye: 感谢您的来电,再见!", "    goodbye: {say: 再见}"),
    edit("      options:\n        - {keys: \"1\", words: [查询], go: bye}", "      options: []"),
    edit("      options:\n        - {keys: \"1\", words: [查询], go: bye}", "      options:\n        - bye"),
    edit("      options:\n        - {keys: \"1\", words: [查询], go: bye}", "      options:\n        - {keys: \"1\"}"),
    edit("      options:\n        - {keys: \"1\", words: [查询], go: bye}", "      options:\n        - {go: bye}"),
    edit("steps:\n", "etiquette:\n  quiet: {below: 3}\nsteps:\n"),
    edit("steps:\n", "etiquette:\n  quiet: {below: loud}\nsteps:\n"),
    edit("steps:\n", "etiquette:\n  silence: [5s]\nsteps:\n"),
    edit("steps:\n", "etiquette: 5s\nsteps:\n"),
    edit("steps:\n", "variables: [org]\nsteps:\n"),
    edit("steps:\n", "jargon: SWIFT\nsteps:\n"),
    edit("steps:\n", "fallback: {say: ''}\nsteps:\n"),
    edit("offers: {call_back: bye, leave_message: bye}", "offers: bye"),
    edit("offers: {call_back: bye, leave_message: bye}", "offers: {call_back: [bye]}"),
    edit("language: cmn-CN", "language: cmn-cn"),
    edit("name: tiny", "name: tiny bank"),
    edit("name: tiny", "name: [tiny]"),
    edit("steps:\n", "steps: []\n"),
    edit("steps:\n", "steps: {}\n"),
    edit(*TRANSFER).replace("ring_limit: 30s", "ring_limit: {a: 1}"),
    edit(*TRANSFER).replace('to: "+861095500001"', "to: [1]"),
    edit(*TRANSFER).replace('to: "+861095500001"', "to: null"),
    edit(*TRANSFER).replace("      reason: 需要为您转接人工客服,\n", ""),
]


@pytest.mark.parametrize("text", BROKEN)
def test_no_pydantic_or_yaml_jargon_reaches_ops(text):
    found = problems(text)
    for p in found:
        assert not any(j in p.message for j in JARGON), str(p)
        assert p.line >= 1 and p.col >= 1 and "; " in p.message or p.message.startswith("E"), str(p)


# --- durations ----------------------------------------------------------------------------

HOLD = ('        - {keys: "1", words: [查询], go: bye}',
        '        - {keys: "1", words: [查询], go: wait}\n'
        '  wait:\n    hold:\n      reason: 我需要为您查询一下账户信息,\n      ask: 麻烦您稍等一下好吗?\n'
        '      limit: LIMIT\n    next: bye')


@pytest.mark.parametrize("written, seconds", [
    ("5 seconds", 5), ("1 minute", 60), ("1h", 3600), ("90", 90), ("1m30s", 90), ("2 mins", 120),
    ("5秒", 5), ("1分钟", 60), ("1分30秒", 90), ("1 min 30 s", 90), ("45s", 45)])
def test_durations_as_people_write_them(written, seconds):
    loaded = load_flow_text(edit(*HOLD).replace("LIMIT", written), "flow.yaml")
    assert loaded.flow.steps["wait"].hold.limit == seconds


@pytest.mark.parametrize("written, words", [
    ("0s", "longer than 0s"), ("0", "longer than 0s"), ("soon", "is not a duration"), ("30s 1m", "is not a duration"),
    ("5 sekunden", "is not a duration"), ("9h", "out of range")])
def test_nonsense_durations_and_no_time_at_all(written, words):
    text = edit(*HOLD).replace("LIMIT", written)
    line, col, msg = one(text, words)
    assert (line, col) == (18, 14)
    if "out of range" not in msg:
        assert "5 seconds" not in msg and "1m30s, 2 mins, 1h, 5秒 or 1分钟" in msg


def test_a_ring_limit_of_0s_is_refused():
    text = edit(*TRANSFER).replace("ring_limit: 30s", "ring_limit: 0s")
    line, col, msg = one(text, "longer than 0s")
    assert (line, col) == (19, 19)


# --- templates (issue 10, issue 12 items 11 and 14) -------------------------------------------

@pytest.mark.parametrize("template, words", [
    ("您好{orgg}", "'{orgg}' names no variable of this flow"),
    ("您好{0.__init__}", "'{0.__init__}' is not a plain variable"),
    ("您好{org.__doc__}", "write {org}"),
    ("您好{org:>100000000}", "without '.', '[', ':' or '!'"),
    ("您好{org!z}", "'{org!z}' is not a plain variable"),
    ("您好{org:d}", "'{org:d}' is not a plain variable"),
    ("Hello {org", "never closed"),
    ("Hello org}", "a lone '}'"),
    ("Hello {}", "an empty '{}'"),
])
def test_templates_are_bare_names_of_known_variables(template, words):
    text = edit("name: tiny", "name: tiny\nvariables: {org: 示范银行}").replace(
        "    say: 您好,欢迎致电示范银行客户服务热线,请问有什么可以帮助您?", f'    say: "{template}"')
    line, col, msg = one(text, words)
    assert (line, col) == (8, 10)


def test_known_variables_and_escapes_load_and_render():
    from ivr.engine.engine import Engine

    text = edit("name: tiny", "name: tiny\nvariables: {org: 示范银行}").replace(
        "    say: 您好,欢迎致电示范银行客户服务热线,请问有什么可以帮助您?",
        '    say: "{org}{{org}}来电{caller}"').replace(
        "    next: menu", "    next: named\n  named:\n    set: {who: \"{org}客户\"}\n    next: menu").replace(
        "      prompt: 查询请按1。", "      prompt: \"{who}请按1。\"")
    engine = Engine(load_flow_text(text, "flow.yaml"))
    state = engine.new_call("+8613800138000")
    said = [a.text for a in engine.start(state).actions if hasattr(a, "text")]
    assert said[:2] == ["示范银行{org}来电+8613800138000", "示范银行客户请按1。"]


def test_templates_in_etiquette_and_fallback_are_checked():
    text = edit("steps:\n", "fallback: {say: \"抱歉{org.__class__}\"}\netiquette:\n  goodbye: {say: \"再见{nobody}\"}\nsteps:\n")
    assert one(text, "not a plain variable")[0] == 5
    assert one(text, "'{nobody}'")[0] == 7


def test_an_apology_that_cannot_render_falls_back_to_the_built_in_one():
    from ivr.engine.engine import LAST_RESORT, Engine

    engine = Engine(load_flow_text(GOOD, "flow.yaml"))
    assert engine.apology(None) == "非常抱歉,系统暂时出现问题。"
    engine.render = lambda text, state: 1 / 0
    assert engine.apology(None) == LAST_RESORT["cmn-CN"]


def test_render_never_formats():
    from ivr.flow.template import render

    assert render("{org:>100000000}{0.__init__}{org}", {"org": "x"}) == "{org:>100000000}{0.__init__}x"


# --- menus ------------------------------------------------------------------------------------

MENU = '        - {keys: "1", words: [查询], go: bye}'


@pytest.mark.parametrize("options, line, words", [
    ('        - {keys: "1", words: [查询], go: bye}\n        - {keys: "1", words: [余额], go: bye}', 14,
     "key '1' is used twice (option 1 has it too)"),
    ('        - {keys: "*", words: [查询], go: bye}', 13, "key '*' is taken by the etiquette: it repeats the last words louder"),
    ('        - {keys: "9", words: [查询], go: bye}', 13, "key '9' is taken by the etiquette: it repeats the menu"),
    ('        - {keys: "1", words: [查询], go: bye}\n        - {keys: "2", words: [余额, 查询], go: bye}', 14,
     "'查询' is a word of option 1 too"),
    ('        - {words: [查询], go: bye}\n        - {keys: "2", words: [查询], go: bye}', 13,
     "option 1 can never be chosen"),
])
def test_menu_keys_and_words_that_cannot_work(options, line, words):
    text = edit(MENU, options)
    assert one(text, words)[0] == line


def test_menu_keys_reserved_by_the_flows_own_etiquette():
    text = edit("steps:\n", "etiquette:\n  menu_repeat_keys: \"0\"\nsteps:\n", edit(MENU, MENU.replace('"1"', '"0"')))
    assert "repeats the menu" in one(text, "key '0' is taken")[2]
    assert load_flow_text(text.replace('{keys: "0"', '{keys: "9"'), "flow.yaml")  # 9 is free now


# --- files a flow names stay in its folder (issue 12, item 12) ---------------------------------

LOOKUP = ("start: hello", "start: who")
WHO = "  who:\n    lookup:\n      directory: DIR\n      set: {surname: surname}\n    next: hello\n"


def flow_with_directory(tmp_path, directory: str):
    from pathlib import Path

    folder = tmp_path / "flows"
    folder.mkdir(exist_ok=True)
    (folder / "callers.yaml").write_text('"+8613800138000": {surname: 张}\n', encoding="utf-8")
    path = folder / "flow.yaml"
    path.write_text(edit(*LOOKUP) + WHO.replace("DIR", directory), encoding="utf-8")
    return Path(path)


def load_problems(path):
    from ivr.flow import load_flow

    with pytest.raises(FlowError) as err:
        load_flow(path)
    return err.value.problems


@pytest.mark.parametrize("directory, words", [
    ("/dev/zero", "absolute path"), ("/etc/passwd", "absolute path"), ("../outside.yaml", "goes up out of"),
    ("sub/../../outside.yaml", "goes up out of"), ("link.yaml", "link to a file outside"),
    ("folder", "not a regular file"), ("big.yaml", "is larger than 1,000,000 bytes"), ("list.yaml", "not a list of callers"),
    ("nobody.yaml", "does not exist next to the flow")])
def test_a_lookup_directory_must_be_a_small_regular_file_in_the_flows_folder(tmp_path, directory, words):
    (tmp_path / "outside.yaml").write_text('"+8613800138000": {surname: 张}\n', encoding="utf-8")
    path = flow_with_directory(tmp_path, directory)
    (path.parent / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    (path.parent / "folder").mkdir()
    (path.parent / "big.yaml").write_text("#" * 1_000_001, encoding="utf-8")
    (path.parent / "list.yaml").write_text("- a\n", encoding="utf-8")
    start = time.perf_counter()
    (p,) = load_problems(path)
    assert time.perf_counter() - start < 2
    assert words in p.message and p.line == 18 and ("callers.yaml" in p.message or "+8613800138000" in p.message)


def test_a_directory_is_read_at_load_and_never_during_a_call(tmp_path):
    from ivr.engine.engine import Engine
    from ivr.flow import load_flow

    path = flow_with_directory(tmp_path, "callers.yaml")
    engine = Engine(load_flow(path))
    (path.parent / "callers.yaml").unlink()
    state = engine.new_call("+8613800138000")
    engine.start(state)
    assert state.variables["surname"] == "张"


def test_a_broken_directory_is_reported_in_its_own_file(tmp_path):
    path = flow_with_directory(tmp_path, "callers.yaml")
    (path.parent / "callers.yaml").write_text('"+8613800138000": {surname: 张}\n"+8613900139000": 李\n', encoding="utf-8")
    (p,) = load_problems(path)
    assert p.file.endswith("callers.yaml") and p.line == 2 and "not a set of fields" in p.message


# --- flows the engine can never run (issue 12, item 13) ---------------------------------------

def test_a_say_loop_without_listening_does_not_validate():
    text = edit("    next: menu", "    next: again") + "  again:\n    say: 再说一遍\n    next: hello\n"
    line, col, msg = one(text, "go round without ever listening")
    assert "'hello' → 'again' → 'hello'" in msg and line == 6


def test_a_chain_longer_than_the_engine_takes_in_one_turn_does_not_validate():
    from ivr.engine.engine import MAX_STEPS_PER_TURN

    chain = "".join(f"  s{i}:\n    say: 第{i}句\n    next: {'s' + str(i + 1) if i < 60 else 'menu'}\n" for i in range(61))
    text = edit("    next: menu", "    next: s0") + chain
    line, col, msg = one(text, f"at most {MAX_STEPS_PER_TURN} in one turn")
    assert "from step 'hello', 63 steps follow one another" in msg and line == 6
    short = "".join(f"  s{i}:\n    say: 第{i}句\n    next: {'s' + str(i + 1) if i < 47 else 'menu'}\n" for i in range(48))
    assert load_flow_text(edit("    next: menu", "    next: s0") + short, "flow.yaml")


# --- offers: needed only where a hold or transfer offers a call back or a message --------------

def test_a_flow_without_holds_or_transfers_needs_no_offers():
    assert load_flow_text(edit("offers: {call_back: bye, leave_message: bye}\n", ""), "flow.yaml").flow.offers.call_back is None


def test_a_hold_that_offers_a_call_back_needs_offers_and_says_why():
    text = edit("offers: {call_back: bye, leave_message: bye}\n", "", edit(*HOLD).replace("LIMIT", "1m"))
    found = problems(text)
    hold = next(i for i, line in enumerate(text.splitlines(), 1) if line == "    hold:")
    assert [p.line for p in found] == [hold, hold]
    assert "when the caller declines, this hold offers a call back (press 2)" in found[0].message
    assert "'offers: call_back' is missing; add offers: {call_back: arrange_call_back" in found[0].message
    assert "'offers: leave_message' is missing" in found[1].message
    own_ways = text.replace("      limit: 1m\n", "      limit: 1m\n      if_declined: bye\n      if_limit: bye\n")
    assert load_flow_text(own_ways, "flow.yaml")
