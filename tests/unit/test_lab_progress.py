"""Step output: every line carries the elapsed time."""

from __future__ import annotations

import io
import re

from pgfortress.lab.progress import Progress


def test_step_announces_and_times_itself() -> None:
    out = io.StringIO()
    with Progress(out).step("booting 2 hosts"):
        pass
    first, second = out.getvalue().splitlines()
    assert re.fullmatch(r"\[\s+\d+\.\ds\] booting 2 hosts \.\.\.", first)
    assert re.fullmatch(r"\[\s+\d+\.\ds\] booting 2 hosts: done in \d+\.\ds", second)


def test_say_prints_one_stamped_line() -> None:
    out = io.StringIO()
    Progress(out).say("hello")
    assert re.fullmatch(r"\[\s+0\.\ds\] hello\n", out.getvalue())
