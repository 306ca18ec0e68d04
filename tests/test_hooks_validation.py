"""The pre-generation hook's checks, called directly (its source loaded without Jinja).

The duration and memory formats are checked against dask itself: the hook runs where
dask is not installed, so it carries its own parser, and these tests prove that every
form it accepts means the same number of seconds or bytes to ``parse_timedelta`` and
``parse_bytes`` (which coiled uses), and that the forms it rejects are either rejected
by dask too or rejected on purpose (listed separately).
"""

from __future__ import annotations

import importlib.util
import itertools
import string
import sys
from email.headerregistry import Address
from pathlib import Path

import pytest
from bakery import CHOICES, CONTEXT, TEMPLATE_ROOT
from dask.utils import parse_bytes, parse_timedelta
from hookkit import BASE_ANSWERS, JINJA_LINES, load_hook

# The hook sees the template's private keys too; the requirement names come from there.
ANSWERS = {"_requirements": CONTEXT["_requirements"], **BASE_ANSWERS}
HOOK = load_hook("pre_gen_project", ANSWERS)
NUMBERS = ("1", "20", "1.5", "0.25", "100")
CASES = (str.lower, str.upper, str.title)
# Characters outside ASCII that Python's case-insensitive matching equates with an ASCII
# letter (for example the long s and the Kelvin sign): a parser must not accept them.
CONFUSABLES = [
    chr(code)
    for code in range(0x80, 0x10000)
    if any(c in string.ascii_letters for c in (chr(code).lower(), chr(code).upper(), chr(code).casefold()))
]


def problems(**changes: object) -> list[str]:
    return HOOK.problems_with({**ANSWERS, **changes}, Path("/nonexistent"))


def spellings(unit: str) -> list[str]:
    """Every way the hook's pattern lets a user write an amount in ``unit``."""
    return [f"{number}{space}{case(unit)}" for number, space, case in itertools.product(NUMBERS, ("", " "), CASES)]


def test_defaults_pass() -> None:
    assert problems() == []


def test_choice_table_equals_cookiecutter_json_with_executor_first() -> None:
    prompts = {field: values for field, values in CHOICES.items() if not field.startswith("_")}
    assert {field: list(values) for field, values in HOOK.CHOICES.items()} == prompts
    assert next(iter(HOOK.CHOICES)) == "executor"


def test_jinja_appears_only_in_the_answers_and_template_root_lines() -> None:
    for name in ("pre_gen_project", "post_gen_project"):
        source = (TEMPLATE_ROOT / "hooks" / f"{name}.py").read_text(encoding="utf-8")
        for line in JINJA_LINES:
            source = source.replace(line, "")
        for marker in ("{{", "{%", "{#"):
            assert source.count(marker) == 0, (name, marker)


def test_problems_come_in_field_order_executor_first() -> None:
    found = problems(python_version="3.12", executor="Foo", project_slug="Bad Slug", coiled_n_workers="0")
    assert [line.split(":")[0] for line in found] == ["executor", "python_version", "project_slug", "coiled_n_workers"]


def test_main_prints_one_line_per_problem_and_fails(capsys, monkeypatch, tmp_path) -> None:
    hook = load_hook("pre_gen_project", {**ANSWERS, "license": "GPL", "coiled_idle_timeout": "20 min"})
    monkeypatch.chdir(tmp_path)
    assert hook.main() == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "error: license: 'GPL' is not allowed; choose one of MIT, BSD-3-Clause, Apache-2.0, none",
        "error: coiled_idle_timeout: '20 min' is not a duration from 1 minute to 7 days such as '20 minutes', "
        "'45m', '2 hours' or '1 day' (units: s, m, h, d, w or their names)",
    ]


def test_main_is_silent_and_succeeds_on_good_answers(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    assert HOOK.main() == 0
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("unit", HOOK.RULES.DURATION_UNITS)
def test_every_accepted_duration_means_the_same_to_dask(unit: str) -> None:
    for spelled in spellings(unit):
        assert HOOK.RULES.DURATION.fullmatch(spelled), spelled
        assert HOOK.RULES.duration_seconds(spelled) == parse_timedelta(spelled), spelled


@pytest.mark.parametrize("unit", HOOK.RULES.MEMORY_UNITS)
def test_every_accepted_memory_size_means_the_same_to_dask(unit: str) -> None:
    for spelled in spellings(unit):
        assert HOOK.RULES.MEMORY.fullmatch(spelled), spelled
        assert HOOK.RULES.memory_bytes(spelled) == parse_bytes(spelled), spelled


def test_unicode_look_alikes_of_unit_letters_are_rejected() -> None:
    assert "\u017f" in CONFUSABLES and "\u212a" in CONFUSABLES  # long s, Kelvin sign
    for unit, char in itertools.product([*HOOK.RULES.DURATION_UNITS, *HOOK.RULES.MEMORY_UNITS], CONFUSABLES):
        for position in range(len(unit)):
            spelled = "20" + unit[:position] + char + unit[position + 1 :]
            assert HOOK.RULES.duration_seconds(spelled) is None and HOOK.RULES.memory_bytes(spelled) is None, spelled


DURATIONS_DASK_REJECTS = ["20 min", "20 mins", "1 hr", "2 hrs", "20 sec", "20 months", "twenty minutes", "20:00", ""]
DURATIONS_ONLY_THE_HOOK_REJECTS = {
    "20": "no unit: dask reads seconds, which nobody means for an idle timeout",
    "30s": "shorter than a minute",
    "8 days": "longer than a week",
    "0 minutes": "zero",
    "1e3s": "exponent",
    "20  m": "two spaces",
    "500ms": "unit below seconds",
}


@pytest.mark.parametrize("spelled", DURATIONS_DASK_REJECTS)
def test_durations_rejected_by_both(spelled: str) -> None:
    assert HOOK.RULES.problem("COILED_IDLE_TIMEOUT", spelled) is not None
    with pytest.raises((KeyError, ValueError, IndexError)):
        parse_timedelta(spelled)


@pytest.mark.parametrize("spelled", DURATIONS_ONLY_THE_HOOK_REJECTS)
def test_durations_rejected_on_purpose(spelled: str) -> None:
    assert HOOK.RULES.problem("COILED_IDLE_TIMEOUT", spelled) is not None
    assert parse_timedelta(spelled) is not None


@pytest.mark.parametrize(("key", "spelled"), [("COILED_IDLE_TIMEOUT", " 20m\t"), ("COILED_WORKER_MEMORY", " 16GiB ")])
def test_surrounding_blanks_are_ignored_and_not_passed_on(key: str, spelled: str) -> None:
    """What reaches Coiled is the value without them, which dask reads as the hook does."""
    assert HOOK.RULES.SETTINGS[key].rule(spelled) == spelled.strip()


MEMORY_DASK_REJECTS = ["16 GiBs", "16 gigabytes", "sixteen GiB", "16 GiB RAM", "16,5GiB"]
MEMORY_ONLY_THE_HOOK_REJECTS = {
    "16": "bytes without a unit",
    "16G": "one-letter unit",
    "16 Gi": "two-letter unit",
    "512MiB": "below 1 GiB",
    "1e1GiB": "exponent",
}


@pytest.mark.parametrize("spelled", MEMORY_DASK_REJECTS)
def test_memory_sizes_rejected_by_both(spelled: str) -> None:
    assert HOOK.RULES.problem("COILED_WORKER_MEMORY", spelled) is not None
    with pytest.raises(ValueError):
        parse_bytes(spelled)


@pytest.mark.parametrize("spelled", MEMORY_ONLY_THE_HOOK_REJECTS)
def test_memory_sizes_rejected_on_purpose(spelled: str) -> None:
    assert HOOK.RULES.problem("COILED_WORKER_MEMORY", spelled) is not None
    assert parse_bytes(spelled) >= 0


def test_workspace_rule_is_coileds_own() -> None:
    from coiled.utils import ACCOUNT_REGEX

    names = ["my-team", "team_1", "a", "1team", "team-", "-team", "Team", "my team", "a--b", "a_-b", "tëam", ""]
    for name in names:
        assert bool(HOOK.RULES.NAME.fullmatch(name)) == bool(ACCOUNT_REGEX.match(name)), name


@pytest.mark.parametrize(
    ("region", "accepted"),
    [
        ("us-east-1", True),
        ("us-gov-west-1", True),
        ("ap-southeast-2", True),
        ("us-east1", True),
        ("northamerica-northeast1", True),
        ("europe-west4", True),
        ("eastus2", True),
        ("germanywestcentral", True),
        ("", True),
        ("US-EAST-1", False),
        ("us_east_1", False),
        ("us-east-", False),
        ("1us", False),
        ("us--east", False),
        ("us-east-1\n", False),
    ],
)
def test_region_form(region: str, accepted: bool) -> None:
    assert (problems(coiled_region=region) == []) is accepted


@pytest.mark.parametrize(
    ("email", "accepted"),
    [
        ("you@example.com", True),
        ("o'brien+tag@example.co.uk", True),
        ("first.last@sub.example.org", True),
        ("zoe@exämple.de", True),
        ("a.b-c_d~e{f}|g@sub.example.org", True),
        ("zoë@example.de", False),
        ("not-an-email", False),
        ("you@localhost", False),
        ('x"y@example.com', False),
        ("you@example.com\n", False),
        ("a..b@example.com", False),
        ("you@-example.com", False),
        ("you@example.c", False),
        ("two@at@example.com", False),
        ("spa ce@example.com", False),
    ],
)
def test_email_form(email: str, accepted: bool) -> None:
    assert (problems(author_email=email) == []) is accepted
    if accepted:  # what setuptools does with the pyproject authors entry
        Address(display_name='Zoë O\'Brien "Bob" \\ 😀', addr_spec=email)


def test_refused_non_ascii_local_part_is_what_setuptools_cannot_write() -> None:
    with pytest.raises(Exception, match="non-ASCII"):
        Address(display_name="Zoë", addr_spec="zoë@example.de")


@pytest.mark.parametrize(
    ("slug", "accepted"),
    [
        ("timeseries-pipeline", True),
        ("pipeline_2", True),
        ("2024-pipeline", True),
        ("s" * 63, True),
        ("s" * 64, False),
        ("Pipeline", False),
        ("pipe--line", False),
        ("-pipeline", False),
        ("pipeline\n", False),
        ("pipe.line", False),
        ("pipe/line", False),
        ("", False),
    ],
)
def test_slug_form(slug: str, accepted: bool) -> None:
    assert (problems(project_slug=slug) == []) is accepted


@pytest.mark.parametrize(
    "name",
    ["prefect", "dask", "distributed", "coiled", "pandas", "pyarrow", "pre_commit", "test", "tests", "json", "asyncio"],
)
def test_package_names_that_shadow_imports_are_refused(name: str) -> None:
    assert problems(package_name=name) == [
        f"package_name: '{name}' would shadow the module of the same name; choose a name no import uses"
    ]


def test_standard_library_names_are_found_without_sys_stdlib_module_names() -> None:
    """Python 3.9 has no ``sys.stdlib_module_names``; the fallback lists the folder."""
    listed = HOOK.stdlib_names(None)
    importable = {
        name for name in sys.stdlib_module_names if not name.startswith("_") and importlib.util.find_spec(name)
    }
    assert importable <= listed
    assert {"json", "asyncio", "math", "sys", "test"} <= listed


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"coiled_worker_cpu": "4", "coiled_worker_memory": "2GiB"}, []),
        ({"coiled_worker_cpu": "4", "coiled_worker_memory": "256GiB"}, []),
        ({"coiled_worker_cpu": "896", "coiled_worker_memory": "24 TiB"}, []),
        (
            {"coiled_worker_cpu": "4", "coiled_worker_memory": "1GiB"},
            [
                "coiled_worker_memory: '1GiB' is 0.25 GiB per vCPU with coiled_worker_cpu 4; "
                "use 0.5 to 64 GiB per vCPU, the range cloud VMs offer"
            ],
        ),
        (
            {"coiled_worker_cpu": "2", "coiled_worker_memory": "1TiB"},
            [
                "coiled_worker_memory: '1TiB' is 512 GiB per vCPU with coiled_worker_cpu 2; "
                "use 0.5 to 64 GiB per vCPU, the range cloud VMs offer"
            ],
        ),
        # One line per field: a bad vCPU count is reported once, not again as a ratio.
        ({"coiled_worker_cpu": "0"}, ["coiled_worker_cpu: '0' is not a whole number from 1 to 1024"]),
    ],
)
def test_memory_per_vcpu_rule(changes: dict, expected: list[str]) -> None:
    assert problems(**changes) == expected


def test_replay_numbers_are_accepted_but_not_booleans() -> None:
    assert problems(coiled_n_workers=8, coiled_worker_cpu=4) == []
    assert problems(coiled_n_workers=True) == ["coiled_n_workers: True is not a whole number from 1 to 1000"]
    assert problems(project_name=["a"]) == ["project_name: ['a'] is not text; use one line of at most 200 characters"]


@pytest.mark.parametrize("char", ["\x00", "\t", "\x7f", "\x85", "\u2028", "\u2029", "\ud800", "\ufdd0", "\uffff"])
def test_text_refuses_line_breaks_controls_and_non_characters(char: str) -> None:
    [line] = problems(author_name=f"Bob{char}Smith")
    assert f"(U+{ord(char):04X})" in line


def test_long_values_are_shortened_in_messages() -> None:
    [line] = problems(description="x" * 513)
    assert line == f"description: '{'x' * 57}...' is 513 characters long; use one line of at most 512 characters"


@pytest.mark.parametrize("schedule", ["", "   ", "0 6 * * *", " 0  6 * * 1-5 ", "*/15 8-18 * jan-mar MON-FRI"])
def test_a_coiled_schedule_is_empty_or_five_cron_fields(schedule: str) -> None:
    assert problems(coiled_schedule=schedule) == []


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("61 * * * *", "minute '61' is outside 0-59"),
        ("0 6 * * *  *", "it has 6 fields"),
        ("@daily", "it has 1 field"),
        ("0 6 * * 7", "day of week '7' is outside 0-6 or sun-sat"),
        ("0 0 30 2 *", "day of month '30' never comes in month '2'"),
        ("*/0 * * * *", "minute '*/0' has a step outside 1-60"),
    ],
)
def test_a_bad_coiled_schedule_is_one_line_naming_the_field_and_the_form(schedule: str, problem: str) -> None:
    """The same rule as ``serve --cron`` in the generated project (rules.cron), in UTC."""
    assert problems(coiled_schedule=schedule) == [
        f"coiled_schedule: {schedule!r} is not a cron schedule: {problem}; use five fields, minute hour "
        "day-of-month month day-of-week, such as '0 6 * * *' or '*/15 8-18 * * mon-fri' (in UTC), or leave it "
        "empty for no schedule"
    ]
