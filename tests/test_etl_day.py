"""The ETL's pure rules on raw keys and bodies: which keys name an update, which bodies are one."""

from __future__ import annotations

import json
from datetime import date

import pytest

from lambdas.common.layout import day_prefix, raw_key
from lambdas.etl.day import EMPTY_REASON, NotAnUpdate, Reject, decode_update, plan_reads, update_id_of_key
from lambdas.etl.schema import BIGINT_MAX

DAY = date(2026, 11, 24)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0.json", 0),
        ("007.json", 7),
        (f"{BIGINT_MAX}.json", BIGINT_MAX),
        (f"{BIGINT_MAX + 1}.json", None),  # 19 digits, but no bigint: the ETL could never store it
        ("99999999999999999999.json", None),
        ("-1.json", None),
        ("1.json.tmp", None),
    ],
)
def test_a_raw_key_names_an_update_id_only_within_a_bigint(name, expected):
    assert update_id_of_key(f"{day_prefix(DAY)}{name}", DAY) == expected


@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_update_id_is_not_an_update_id(flag):
    body = json.dumps({"update_id": flag, "message": {"message_id": 1, "date": 1, "chat": {"id": 1}}}).encode()

    with pytest.raises(NotAnUpdate, match=f"no integer update_id \\(got {flag}\\)"):
        decode_update(body, int(flag))  # True == 1 and False == 0 in Python: the name alone would match


def test_the_plan_finds_the_key_it_planned_for_each_update_id():
    keys = [f"{day_prefix(DAY)}0009.json", raw_key(DAY, 2), raw_key(DAY, 30), raw_key(DAY, 4)]
    plan = plan_reads(DAY, keys, earlier_update_ids={4})

    assert [plan.key_of(update_id) for update_id in (2, 9, 30)] == [keys[1], keys[0], keys[2]]
    for missing in (1, 4, 31):  # before, deduplicated away, after
        with pytest.raises(KeyError, match=f"update_id {missing} is not in the read plan"):
            plan.key_of(missing)


def test_a_repeated_key_keeps_its_last_value_and_lone_surrogates_in_keys_are_repaired_before_the_type_is_chosen():
    message = b'{"message_id":1,"date":1,"chat":{"id":1}}'
    assert decode_update(b'{"update_id":2,"update_id":1,"message":' + message + b"}", 1)["update_id"] == 1
    # As Athena reads the line: "\ud800x" is "?x", which sorts before "\ue000y", the type it names
    update = decode_update(b'{"update_id":1,"\\ue000y":1,"\\ud800x":' + message + b"}", 1)
    assert update == {"update_id": 1, "\ue000y": 1, "?x": json.loads(message)}
    # two keys Athena writes alike: the last wins
    assert decode_update(b'{"update_id":1,"\\ud800":' + message + b',"\\udc00":2}', 1) == {"update_id": 1, "?": 2}


def test_an_empty_object_is_rejected_from_the_listing_and_claims_no_update_id():
    empty = [f"{day_prefix(DAY)}05.json", raw_key(DAY, 6)]
    keys = [*empty, raw_key(DAY, 5), f"{day_prefix(DAY)}006.json"]
    plan = plan_reads(DAY, keys, earlier_update_ids=set(), empty_keys=set(empty))

    assert plan.objects == ((5, raw_key(DAY, 5)), (6, keys[3])) and plan.duplicates == 0
    assert plan.rejects == tuple(Reject(key, EMPTY_REASON) for key in empty)
