"""A benchmark script rewrites only its own section of docs/benchmarks.md."""

from __future__ import annotations

from bench._figures import replace_section

START, END = "<!-- mine -->", "<!-- /mine -->"


def test_only_the_scripts_own_section_is_replaced() -> None:
    text = f"# B\n\n{START}\nold\n{END}\n\nhand-written\n<!-- other -->x\n"
    new = f"{START}\nnew\n{END}\n"
    assert replace_section(text, START, END, new) == (
        f"# B\n\n{START}\nnew\n{END}\n\nhand-written\n<!-- other -->x\n"
    )


def test_a_missing_section_is_appended_after_one_blank_line() -> None:
    new = f"{START}\nnew\n{END}\n"
    assert replace_section("# B\n\n\n", START, END, new) == f"# B\n\n{new}"
