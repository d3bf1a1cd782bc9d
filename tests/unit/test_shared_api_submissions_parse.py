"""api/submissions.py: parse_subject_refs and parse_options, the form fields of an upload."""

from __future__ import annotations

import json

import pytest

from api.problems import Problem
from api.submissions import MAX_SUBJECT_REFS, parse_options, parse_subject_refs
from shared.job_options import JobOptions


@pytest.mark.parametrize("raw", [None, "", "   \n"])
def test_subject_refs_absent_is_empty(raw: str | None) -> None:
    assert parse_subject_refs(raw) == {}


def test_subject_refs_object_accepted_numbers_become_strings() -> None:
    assert parse_subject_refs('{"vehicle": "V-12", "driver": 42, "zero": 0}') == {
        "vehicle": "V-12", "driver": "42", "zero": "0",
    }


def test_subject_refs_at_most_max_accepted() -> None:
    raw = json.dumps({f"k{i}": f"v{i}" for i in range(MAX_SUBJECT_REFS)})
    assert len(parse_subject_refs(raw)) == MAX_SUBJECT_REFS


def test_subject_refs_value_of_256_chars_accepted() -> None:
    assert parse_subject_refs(json.dumps({"k": "v" * 256})) == {"k": "v" * 256}


INVALID_REFS = {
    "array": '["V-12"]',
    "string": '"V-12"',
    "number": "12",
    "null": "null",
    "too_many": json.dumps({f"k{i}": "v" for i in range(MAX_SUBJECT_REFS + 1)}),
    "empty_value": '{"vehicle": ""}',
    "null_value": '{"vehicle": null}',
    "nested_object": '{"vehicle": {"id": "V-12"}}',
    "nested_list": '{"vehicle": ["V-12"]}',
    "too_long_value": json.dumps({"k": "v" * 257}),
    "malformed": '{"vehicle": "V-12"',
    "single_quotes": "{'vehicle': 'V-12'}",
}


@pytest.mark.parametrize("raw", list(INVALID_REFS.values()), ids=list(INVALID_REFS))
def test_subject_refs_invalid_is_422_problem(raw: str) -> None:
    with pytest.raises(Problem) as info:
        parse_subject_refs(raw)
    assert info.value.status == 422
    assert info.value.code == "invalid_subject_refs"


def test_subject_refs_problem_does_not_echo_input() -> None:
    with pytest.raises(Problem) as info:
        parse_subject_refs('{"driver": {"name": "Alice Secret"}}')
    assert "Alice" not in info.value.title
    assert "Alice" not in (info.value.detail or "")
    assert "Alice" not in repr(info.value.extra)


@pytest.mark.parametrize("raw", ['{"vehicle": true}', '{"vehicle": "   "}', '{" ": "V-1"}'])
def test_subject_refs_boolean_or_blank_refused(raw: str) -> None:
    with pytest.raises(Problem):
        parse_subject_refs(raw)


def test_subject_refs_decimal_numbers_accepted() -> None:
    assert parse_subject_refs('{"drive": 1.5}') == {"drive": "1.5"}


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_options_absent_are_defaults(raw: str | None) -> None:
    assert parse_options(raw) == JobOptions()


def test_options_valid_json_accepted() -> None:
    options = parse_options('{"mask": "solid", "threshold": 0.4, "padding": {"width": 2}}')
    assert options.mask == "solid"
    assert options.threshold == 0.4
    assert options.padding.width == 2.0


INVALID_OPTIONS = {
    "malformed": '{"mask": ',
    "array": '["blur"]',
    "unknown_field": '{"colour": "red"}',
    "unknown_nested": '{"padding": {"depth": 2}}',
    "out_of_range": '{"threshold": 5}',
    "empty_targets": '{"targets": []}',
    "bad_target": '{"targets": ["tattoo"]}',
}


@pytest.mark.parametrize("raw", list(INVALID_OPTIONS.values()), ids=list(INVALID_OPTIONS))
def test_options_invalid_is_422_problem(raw: str) -> None:
    with pytest.raises(Problem) as info:
        parse_options(raw)
    assert info.value.status == 422
    assert info.value.code == "invalid_options"
    errors = info.value.extra["errors"]
    assert errors
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)


def test_options_errors_locate_the_nested_field() -> None:
    with pytest.raises(Problem) as info:
        parse_options('{"padding": {"depth": 2}}')
    assert info.value.extra["errors"][0]["loc"] == ["padding", "depth"]
    assert info.value.extra["errors"][0]["type"] == "extra_forbidden"
