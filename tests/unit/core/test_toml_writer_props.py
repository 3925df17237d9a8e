"""The TOML writer, property-tested: whatever keys, values and comments it is given, the text either
reads back as exactly that data with tomllib AND with toml 0.10.2 (the parser sd-scripts uses), or
the writer refuses it with a TomlWriteError sentence. No text ever starts a line of its own."""

from __future__ import annotations

import pytest
import toml
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_workbench import toml_writer

try:
    import tomllib
except ModuleNotFoundError:  # 3.10
    import tomli as tomllib

PROPS = settings(max_examples=150, deadline=None)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
# Text an attacker would pick: TOML syntax, newlines, quotes, backslashes, controls.
NASTY = st.lists(
    st.sampled_from([*"\n\r\t\"'\\#=[]{}.,\x00\x1b\x7f\x85\u2028 ab_-1uU", "\r\n", '"""', "'''", "\\u"]),
    max_size=12,
).map("".join)
STRINGS = TEXT | NASTY
KEYS = TEXT | NASTY
INTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
ARRAYS = (
    st.lists(STRINGS, max_size=3)
    | st.lists(INTS, max_size=3)
    | st.lists(FLOATS, min_size=1, max_size=3)
    | st.lists(st.one_of(INTS, STRINGS), max_size=3)  # mixed: refused
)

# What real configs hold, which must never be refused: paths (POSIX and Windows, with quotes,
# spaces, '#', '=', even line breaks), names, numbers.
PATH_CHARS = st.sampled_from([*"abcXYZ019_-. /\\:#='\"\n\t", "é", "日本", " (1)"])
PLAIN_STRINGS = st.lists(PATH_CHARS, max_size=12).map("".join).filter(lambda s: not s.startswith('""'))
PLAIN_ITEMS = st.lists(st.sampled_from([*"abcXYZ019_-. /:#='é", "\\x"]), max_size=8).map("".join)
PLAIN_KEYS = st.text(st.sampled_from("abcXYZ019_- .#=[]'"), min_size=1, max_size=8).filter(
    lambda k: k == k.strip() and " ." not in k
)
PLAIN_SCALARS = (
    PLAIN_STRINGS
    | INTS
    | FLOATS
    | st.booleans()
    | st.lists(PLAIN_ITEMS, max_size=3)
    | st.lists(INTS, max_size=3)
    | st.lists(FLOATS, min_size=1, max_size=3)
)


SCALARS = STRINGS | INTS | FLOATS | st.booleans() | ARRAYS


def tables(depth: int = 2, keys=KEYS, scalars=SCALARS):
    leaf = st.dictionaries(keys, scalars, max_size=4)
    if depth == 0:
        return leaf
    inner = tables(depth - 1, keys, scalars)
    return st.dictionaries(
        keys, scalars | inner | st.lists(inner.filter(bool), min_size=1, max_size=2), max_size=4
    )


def same(a, b) -> bool:
    """Equality with types: 1 is not 1.0 and not True; floats equal as numbers (0.0 == -0.0)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def written_or_refused(data) -> str | None:
    """The TOML text, or None when the writer refused something (with a sentence saying why)."""
    try:
        return toml_writer.dumps(data)
    except toml_writer.TomlWriteError as exc:
        assert "sd-scripts" in str(exc) or "TOML" in str(exc)
        return None


@PROPS
@given(data=tables())
def test_any_data_reads_back_the_same_with_tomllib_or_is_refused(data):
    text = written_or_refused(data)
    assert text is None or same(data, tomllib.loads(text))


@PROPS
@given(data=tables())
def test_any_data_reads_back_the_same_with_toml_0_10_2_or_is_refused(data):
    text = written_or_refused(data)
    assert text is None or same(data, toml.loads(text))


@PROPS
@given(data=tables(keys=PLAIN_KEYS, scalars=PLAIN_SCALARS))
def test_real_config_shapes_are_never_refused_and_read_back_with_both_parsers(data):
    text = toml_writer.dumps(data)
    assert same(data, tomllib.loads(text)) and same(data, toml.loads(text))


@PROPS
@given(
    lines=st.lists(STRINGS | st.text(max_size=6), min_size=1, max_size=3),
    data=tables(1, PLAIN_KEYS, PLAIN_SCALARS),
)
def test_a_comment_never_adds_a_line_or_a_key(lines, data):
    head = toml_writer.comment(*lines)
    assert head.count("\n") == len(lines) and all(line.startswith("# ") for line in head.splitlines())
    text = head + toml_writer.dumps(data)
    assert same(data, tomllib.loads(text)) and same(data, toml.loads(text))


@PROPS
@given(key=KEYS, value=PLAIN_STRINGS)
def test_a_key_is_bare_quoted_or_refused_never_anything_else(key, value):
    text = written_or_refused({key: value})
    if text is not None:
        assert text.count("\n") == 1  # one line: key = value
        assert tomllib.loads(text) == {key: value} == toml.loads(text)


# --------------------------------------------------------------------------- the attacks, spelled out
INJECTIONS = [
    "proj\nlogging_dir = '/tmp/evil'",
    'proj\r\nlogging_dir = "/tmp/evil"',
    "proj\n[[datasets.subsets]]\nimage_dir = '/etc'",
    "proj\rnetwork_module = 'evil'",
    "proj\x0blogging_dir = 1",
    "proj\x0clogging_dir = 1",
    "proj\x85logging_dir = 1",
    "proj\u2028logging_dir = 1",
    "proj'\nlogging_dir = 1 #",
    'proj"\nlogging_dir = 1 #',
    "proj\\\nlogging_dir = 1",
]


@pytest.mark.parametrize("path", INJECTIONS)
def test_a_path_with_a_line_break_injects_nothing_anywhere(path):
    head = toml_writer.comment(f"Copy of {path} for this run", f"Run it again with: train {path}")
    config = {
        "output_dir": path,
        "sample": {"prompt": path},
        "datasets": [{"subsets": [{"image_dir": path}]}],
    }
    try:
        body = toml_writer.dumps(config)
    except toml_writer.TomlWriteError:  # refused as a value (a control character): fine too
        body = toml_writer.dumps({"output_dir": "x"})
        config = {"output_dir": "x"}
    for parsed in (tomllib.loads(head + body), toml.loads(head + body)):
        assert "logging_dir" not in parsed and "network_module" not in parsed
        assert same(parsed, config)


@pytest.mark.parametrize("key", ["key\n", "key\r", "a\\b", "tab\t", "both'\"", "\x00", "x\x7f", " pad", ""])
def test_a_key_with_a_line_break_or_an_escape_is_refused_never_written_bare(key):
    for data in ({key: 1}, {key: {"a": 1}}, {key: [{"a": 1}]}):
        with pytest.raises(toml_writer.TomlWriteError, match="TOML key"):
            toml_writer.dumps(data)


def test_keys_with_quotes_or_spaces_are_quoted_and_read_alike():
    for key in ("a b", "it's", 'say "hi"', "a.b", "[x]", "#c"):
        text = toml_writer.dumps({key: 1, "t": {key: [1]}})
        assert tomllib.loads(text) == toml.loads(text) == {key: 1, "t": {key: [1]}}


@pytest.mark.parametrize(
    "value",
    [
        "\udcff",
        "name\ud800",
        float("inf"),
        float("nan"),
        2**63,
        -(2**63) - 1,
        "esc\x1b\\u",
        '""\'x',
        ["a,b"],
        ["x\\"],
        [1, "a"],
        [1, 2.0],
    ],
    ids=[
        "surrogate",
        "lone high",
        "inf",
        "nan",
        "int64+1",
        "int64-1",
        "control",
        "two quotes first",
        "comma in list",
        "backslash ends list item",
        "mixed list",
        "int and float",
    ],
)
def test_values_toml_or_sd_scripts_cannot_hold_are_a_clear_error(value):
    with pytest.raises(toml_writer.TomlWriteError):
        toml_writer.dumps({"x": value})


def test_a_comment_holding_a_surrogate_or_controls_is_escaped_not_a_crash():
    assert toml_writer.comment("a\udcffb") == "# a\\udcffb\n"
    assert toml_writer.comment("x\n[y]\r\x1b\x85") == "# x\\n[y]\\r\\x1b\\x85\n"


def test_windows_paths_stay_literal():
    assert toml_writer.dumps({"p": "C:\\models\\x.safetensors"}) == "p = 'C:\\models\\x.safetensors'\n"
