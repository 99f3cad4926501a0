"""Fill mode: hole parsing, the exact FIM prompt, trimming, splicing and suffix echoes."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playground.errors import FillMarkerError, InputError, PromptTooLongError
from playground.modes.fill import FillMode
from playground.prompt import Prompt, Special, Text
from playground.prompting.budget import Budget
from playground.prompting.fill import build_fill, split_hole, strip_suffix_echo
from playground.prompting.fill_end import Hole, middle_end, settled_middle
from playground.prompting.prepared import Prepared
from playground.registry import FimTokens, ModelSpec

STARCODER = ModelSpec("starcoder", "bigcode/starcoder", 8192, fim=FimTokens.starcoder(), filename_token="<filename>")
SANTACODER = ModelSpec("santacoder", "bigcode/gpt_bigcode-santacoder", 2048, fim=FimTokens.santacoder())
ROOMY = Budget(8192, 256, 8192 - 256)


def chars(text: str) -> int:
    return len(text)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("a<FILL_HERE>b", ("a", "b")),
        ("<FILL_HERE>", ("", "")),
        ("def f():\n    <FILL_HERE>\n\n", ("def f():\n    ", "\n\n")),
        ("  \t<FILL_HERE>\t  ", ("  \t", "\t  ")),
    ],
)
def test_split_hole_keeps_whitespace_exactly(code, expected):
    assert split_hole(code) == expected


@pytest.mark.parametrize(("code", "needle"), [("no hole", "has no such marker"), ("<FILL_HERE>x<FILL_HERE>", "2 <FILL_HERE> markers")])
def test_wrong_number_of_holes_is_named(code, needle):
    with pytest.raises(FillMarkerError, match=needle):
        split_hole(code)


@pytest.mark.parametrize(
    ("spec", "filename", "segments"),
    [
        (STARCODER, "", (Special("<fim_prefix>"), Text("x = "), Special("<fim_suffix>"), Text("\n"), Special("<fim_middle>"))),
        (STARCODER, "a.py", (Special("<fim_prefix>"), Special("<filename>"), Text("a.py\n"), Text("x = "),
                             Special("<fim_suffix>"), Text("\n"), Special("<fim_middle>"))),
        # SantaCoder has no <filename> token: the name is left out, never spelled as text.
        (SANTACODER, "a.py", (Special("<fim-prefix>"), Text("x = "), Special("<fim-suffix>"), Text("\n"), Special("<fim-middle>"))),
    ],
)
def test_fim_prompt_layout(spec, filename, segments):
    prepared = build_fill("x = <FILL_HERE>\n", filename, spec, ROOMY, chars)
    assert prepared.prompt.segments == segments


def test_spm_order_puts_the_prefix_right_before_the_middle():
    spec = replace(STARCODER, fim=replace(FimTokens.starcoder(), order="spm"))
    prepared = build_fill("def f():\n    <FILL_HERE>\n    return x\n", "a.py", spec, ROOMY, chars)
    assert prepared.prompt.segments == (
        Special("<fim_prefix>"), Special("<fim_suffix>"), Text("\n    return x\n"), Special("<fim_middle>"),
        Special("<filename>"), Text("a.py\n"), Text("def f():\n    "),
    )
    assert prepared.prompt.render().endswith("<fim_middle><filename>a.py\ndef f():\n    ")


def test_special_token_text_in_code_stays_text():
    prepared = build_fill("s = '<fim_suffix><|endoftext|>'\n<FILL_HERE>", "", STARCODER, ROOMY, chars)
    specials = [s.token for s in prepared.prompt.segments if isinstance(s, Special)]
    assert specials == ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]


def test_model_without_fim_is_refused():
    plain = ModelSpec("plain", "x/y", 1024)
    with pytest.raises(InputError, match="not trained for fill-in-the-middle"):
        build_fill("<FILL_HERE>", "", plain, ROOMY, chars)


def test_trims_prefix_text_from_the_top_then_suffix_from_the_bottom():
    prefix = "".join(f"line{i}\n" for i in range(10))
    suffix = "".join(f"tail{i}\n" for i in range(10))
    budget = Budget(100, 40, 60)  # 3 specials + 57 characters
    prepared = build_fill(prefix + "<FILL_HERE>" + suffix, "", STARCODER, budget, chars)
    text = [s.text for s in prepared.prompt.segments if isinstance(s, Text)]
    assert prepared.prompt.segments[0] == Special("<fim_prefix>")
    assert text[0].endswith("line9\n") and not text[0].startswith("line0")
    assert 3 + sum(len(t) for t in text) <= 60  # the specials count one each
    assert any("lines above the hole" in n for n in prepared.notices)
    assert prepared.state.prefix.startswith("line0")  # the user's code is kept whole for the splice


def test_refuses_when_even_the_lines_at_the_hole_do_not_fit():
    with pytest.raises(PromptTooLongError, match="tokens"):
        build_fill("x" * 500 + "<FILL_HERE>" + "y" * 500, "", STARCODER, Budget(300, 100, 200), chars)


@pytest.mark.parametrize(
    ("middle", "suffix", "expected"),
    [
        ("return a + b\n", "\nprint(add(1, 2))\n", "return a + b\n"),
        ("return a + b\nprint(add(1, 2))\n", "print(add(1, 2))\n", "return a + b\n"),
        ("x = 1\n    return numbers[:n]\n", "\n    return numbers[:n]\n", "x = 1\n"),
        ("y = 2\n", "", "y = 2\n"),
        ("x = n\n", "n", "x = n\n"),  # an overlap inside a line is not an echo
        ("value\n", "value = compute(a, b)\n", "value\n"),  # too short to call an echo of a long suffix
    ],
)
def test_strip_suffix_echo(middle, suffix, expected):
    assert strip_suffix_echo(middle, suffix) == expected


def splice(code: str, middle: str) -> tuple[str, str | None]:
    """What the fill mode shows for ``middle`` generated into ``code``'s hole."""
    shown = FillMode().present(Prepared(Prompt.of(""), 1, Hole(*split_hole(code))), middle)
    return shown.text, shown.generated


def test_splice_puts_middle_in_the_hole():
    full, middle = splice("def f():\n    <FILL_HERE>\n", "return 1")
    assert (full, middle) == ("def f():\n    return 1\n", "return 1")


@given(st.text(), st.text(), st.text())
def test_splice_round_trip(prefix, middle, suffix):
    prefix, suffix = prefix.replace("<FILL_HERE>", ""), suffix.replace("<FILL_HERE>", "")
    full, used = splice(prefix + "<FILL_HERE>" + suffix, middle)
    assert used is not None and full == prefix + used + suffix
    assert middle.startswith(used)


@given(st.text(alphabet="ab \n(){}:=", max_size=40), st.text(alphabet="ab \n(){}:=", max_size=120),
       st.text(alphabet="ab \n(){}:=", max_size=40), st.lists(st.integers(1, 7), max_size=30))
def test_fill_deltas_join_into_the_recorded_middle(prefix, middle, suffix, cuts):
    """Streamed in any pieces, the deltas join into the middle the record keeps, echo of the suffix and loops cut."""
    prepared = Prepared(Prompt.of(""), 1, Hole(prefix, suffix))
    pieces, rest = [], middle
    for size in cuts:
        pieces.append(rest[:size])
        rest = rest[size:]
    pieces.append(rest)
    shown = FillMode().present(prepared, middle)
    assert "".join(FillMode().deltas(prepared, iter(pieces))) == shown.generated == shown.fields["middle"]


def test_fill_deltas_hold_back_a_repeat_of_the_code_after_the_hole():
    prepared = Prepared(Prompt.of(""), 1, Hole("def add(a, b):\n", "\nprint(add(1, 2))\n"))
    pieces = ["    return a + b\n", "print(", "add(1, 2))\n", "print('more')\n"]
    assert list(FillMode().deltas(prepared, iter(pieces))) == ["    return a + b"]
    unscoped = replace(prepared, state=Hole("def add(a, b):\n", "\nprint(add(1, 2))\n", end_at_scope=False))
    assert list(FillMode().deltas(unscoped, iter(pieces))) == ["    return a + b\n"]  # the repeat alone


# -- where a middle ends -----------------------------------------------------------------------

HOLE_IN_BODY = Hole("def area(r):\n    ", "\n\n\ndef main():\n    print(area(2))\n")


@pytest.mark.parametrize(("raw", "middle", "why"), [
    # a new top-level function after the body: the block that holds the hole has ended
    ("return 3.14 * r * r\n\n\ndef volume(r):\n    return r\n", "return 3.14 * r * r", "scope"),
    # deeper lines and blank lines inside the block are the middle's
    ("if r < 0:\n        raise ValueError(r)\n\n    return r * r\nclass", "if r < 0:\n        raise ValueError(r)"
     "\n\n    return r * r", "scope"),
    # a closing bracket the middle opened is part of it, though it is indented less
    ("return sum([\n        r,\n])\nx = 1", "return sum([\n        r,\n])", "scope"),
    # the model ended by itself: nothing is cut, trailing blank lines included
    ("return r * r\n\n", "return r * r\n\n", None),
])
def test_a_middle_ends_where_it_leaves_the_holes_block(raw, middle, why):
    assert settled_middle(raw, HOLE_IN_BODY) == (middle, why)


def test_a_hole_at_the_start_of_an_empty_line_takes_the_middles_own_indentation():
    hole = Hole("class Stack:\n    def push(self, x):\n", "")
    assert settled_middle("        self.items.append(x)\n    def pop(self):\n", hole) == (
        "        self.items.append(x)", "scope")


def test_text_that_may_still_leave_the_block_is_held_back_and_nothing_ends_with_the_setting_off():
    assert middle_end("return r\n\n", HOLE_IN_BODY) == replace(middle_end("return r", HOLE_IN_BODY), at=8)
    assert not middle_end("return r\n\n", HOLE_IN_BODY).final
    off = replace(HOLE_IN_BODY, end_at_scope=False)
    assert settled_middle("return r\n\ndef volume(r):\n", off) == ("return r\n\ndef volume(r):\n", None)


def test_a_certain_end_waits_while_an_earlier_repeat_may_still_become_certain():
    """Found by the property test: a line that leaves the block (certain) behind a line that may still
    grow into a repeat of the suffix (pending) must not end the stream there, or the deltas sent would
    run past the middle the record keeps once the repeat completes."""
    hole = Hole(" ", ":\n::")
    pieces = [":\n:", ":"]
    assert not middle_end(":\n:", hole).final  # the repeat at 0 is still open
    deltas = list(FillMode().deltas(Prepared(Prompt.of(""), 1, hole), iter(pieces)))
    assert "".join(deltas) == settled_middle(":\n::", hole)[0] == ""
