"""shared/subjects.py: keyed hashes of subject identifiers."""

from __future__ import annotations

import hashlib
import hmac

from shared.subjects import hash_subject_refs


def test_deterministic() -> None:
    refs = {"vehicle": "V-12", "driver": "D-7"}
    assert hash_subject_refs(refs, "s3cret") == hash_subject_refs(dict(refs), "s3cret")


def test_matches_hmac_sha256_of_name_equals_value() -> None:
    expected = hmac.new(b"s3cret", b"vehicle=V-12", hashlib.sha256).hexdigest()
    assert hash_subject_refs({"vehicle": "V-12"}, "s3cret") == [expected]


def test_keyed_different_secret_different_hash() -> None:
    refs = {"vehicle": "V-12"}
    assert hash_subject_refs(refs, "one") != hash_subject_refs(refs, "two")
    assert hash_subject_refs(refs, "one")[0] != hashlib.sha256(b"vehicle=V-12").hexdigest()


def test_never_contains_raw_value_or_name() -> None:
    refs = {"vehicle": "V-12345", "driver": "alice"}
    for digest in hash_subject_refs(refs, "s3cret"):
        assert len(digest) == 64
        int(digest, 16)
        for raw in ("V-12345", "v-12345", "alice", "vehicle", "driver"):
            assert raw not in digest


def test_one_hash_per_pair_and_each_matches_alone() -> None:
    refs = {"vehicle": "V-12", "driver": "D-7", "fleet": "F-1"}
    hashes = hash_subject_refs(refs, "k")
    assert len(hashes) == 3
    assert len(set(hashes)) == 3
    assert hashes == sorted(hashes)
    for name, value in refs.items():
        (single,) = hash_subject_refs({name: value}, "k")
        assert single in hashes


def test_empty_refs() -> None:
    assert hash_subject_refs({}, "k") == []


def test_name_case_and_whitespace_normalised() -> None:
    assert hash_subject_refs({"  Vehicle ": " V-12  "}, "k") == hash_subject_refs({"vehicle": "V-12"}, "k")


def test_value_case_is_significant() -> None:
    assert hash_subject_refs({"vehicle": "v-12"}, "k") != hash_subject_refs({"vehicle": "V-12"}, "k")


def test_name_and_value_are_bound_together() -> None:
    assert hash_subject_refs({"vehicle": "7"}, "k") != hash_subject_refs({"driver": "7"}, "k")
