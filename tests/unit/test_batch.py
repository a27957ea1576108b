"""Several reads in one round trip: the shell batch, run here for real, and
the facts that use it, fed the output a host would print."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pyinfra.api.facts import FactBase

from pgfortress.batch import BATCH_MARK, BatchError, batched_command, split_batch
from roles import facts
from roles.facts import FactBatch, PostgresCatalogs

DATA = Path(__file__).parent / "data"


def run(command: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout.splitlines()


def test_each_command_gets_its_own_lines_in_order() -> None:
    code, lines = run(batched_command(["echo a; echo b", "true", "echo c"]))
    assert code == 0
    assert split_batch(lines, 3) == [["a", "b"], [], ["c"]]


def test_a_failed_command_fails_the_batch_but_the_others_still_run() -> None:
    code, lines = run(batched_command(["echo a; exit 3", "echo b"]))
    assert code == 1
    assert split_batch(lines, 2) == [["a"], ["b"]]


def test_commands_are_kept_apart_and_share_the_prelude() -> None:
    command = batched_command(
        ['echo "$text"; x=changed', 'echo "${x:-unset}"'], prelude="text='a b'"
    )
    assert split_batch(run(command)[1], 2) == [["a b"], ["unset"]]


@pytest.mark.parametrize(
    ("lines", "count", "problem"),
    [
        ([f"{BATCH_MARK}1", "a"], 1, "out of order"),
        (["stray", f"{BATCH_MARK}0"], 1, "before the first section"),
        ([f"{BATCH_MARK}0"], 2, "1 sections, expected 2"),
    ],
)
def test_output_that_does_not_match_the_batch_is_refused(
    lines: list[str], count: int, problem: str
) -> None:
    with pytest.raises(BatchError, match=problem):
        split_batch(lines, count)


class Needs(FactBase[str]):
    def command(self, word: str) -> str:
        return f"echo {word}"

    def requires_command(self, word: str) -> str:
        return "no-such-tool-pgfortress"


class Plain(FactBase[str]):
    def command(self) -> str:
        return "echo plain"


def test_a_fact_batch_runs_each_facts_own_command() -> None:
    command = FactBatch().command([(Plain, {}), (Needs, {"word": "x"})])
    code, lines = run(command)
    assert code == 0
    plain, needs = FactBatch().process(lines)
    assert plain == ["plain"]
    # Not run: the section says the tool is missing (the fact gets its default).
    assert needs == [facts._MISSING]


def test_catalogs_come_back_per_database_in_order() -> None:
    document = (DATA / "catalog_pg15_fresh.json").read_text().strip()
    output = [f"{BATCH_MARK}0", document, f"{BATCH_MARK}1"]
    postgres, missing = PostgresCatalogs().process(output)
    assert postgres is not None
    assert postgres.database == "postgres"
    assert missing is None


def test_the_catalogs_are_read_by_one_psql_with_the_query_sent_once() -> None:
    command = PostgresCatalogs().command(["postgres", "app", "archive"], 150000)
    assert command.count("pg_auth_members") == 1
    assert command.count("setpriv --reuid=postgres") == 1
    words = command.split()
    assert words[words.index("-d") + 1] == "postgres"
    # The other databases are connected to by psql itself, named by variables.
    assert "--set=pgf_name_1=app" in words
    assert "--set=pgf_name_2=archive" in words
    assert "--set=pgf_conn_2=dbname=" in command
    assert command.count("\\c -reuse-previous=on") == 2


def test_a_read_cut_short_leaves_the_rest_out() -> None:
    document = (DATA / "catalog_pg15_fresh.json").read_text().strip()
    found = PostgresCatalogs().process([f"{BATCH_MARK}0", document])
    assert len(found) == 1
