"""The shipped list of accepted time zones, how it is generated, and the daylight-saving gaps a schedule avoids."""

from __future__ import annotations

import re
from datetime import time
from importlib import metadata, resources
from zoneinfo import ZoneInfo

import pytest

from analytics import load_queries
from stacks import time_zones
from stacks.config import PROJECT_ROOT
from stacks.time_zones import ZONE_LIST, accepted_zones, describe, skipped_local_times, zone_list_text

TZDATA_PIN = re.search(
    r"^tzdata==(\S+)", (PROJECT_ROOT / "lambdas" / "requirements.txt").read_text(encoding="utf-8"), re.MULTILINE
)[1]
REFUSED = [
    "EST", "MST", "HST", "ROC", "Factory", "localtime", "right/UTC", "posix/UTC",  # not Trino's, or not tzdata's
    "Europe/Kyiv", "Pacific/Kanton", "America/Ciudad_Juarez", "America/Coyhaique",  # newer than the index
    "america/sao_paulo", "America/Sao_Paulo ", "",
]


def test_the_list_is_generated_from_the_pinned_tzdata_and_a_recorded_trino_commit():
    text = ZONE_LIST.read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("#")]
    zones = [line for line in text.splitlines() if not line.startswith("#")]

    assert re.search(r"^# Trino index: trinodb/trino \S+/zone-index.properties at [0-9a-f]{40} \(last", text, re.M)
    assert f"# tzdata: {TZDATA_PIN} " in text
    assert metadata.version("tzdata") == TZDATA_PIN  # the virtualenv has what the Lambdas bundle
    assert zones == sorted(set(zones)) and all(zone and zone == zone.strip() for zone in zones)
    assert len(header) + len(zones) == len(text.splitlines())  # no blank or stray lines


def test_every_accepted_zone_is_in_the_lambdas_tzdata_package():
    bundled = set(resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split())

    assert accepted_zones() <= bundled
    for zone in sorted(accepted_zones()):
        assert ZoneInfo(zone).key == zone


def test_the_stages_zone_and_utc_are_accepted_and_names_athena_or_the_lambdas_lack_are_not():
    assert {"America/Sao_Paulo", "UTC", "Europe/Kiev", "Pacific/Enderbury", "America/Nuuk"} <= accepted_zones()
    assert not accepted_zones() & set(REFUSED)
    assert not time_zones.is_accepted_zone(None) and not time_zones.is_accepted_zone(["UTC"])


@pytest.mark.parametrize("zone", REFUSED)
def test_the_saved_analytics_refuse_the_same_zones_as_the_config(zone):
    with pytest.raises(ValueError, match=re.escape(f"unknown IANA time zone {zone!r}")):
        load_queries(zone, "telegram_lake_test")


def test_the_saved_analytics_accept_a_listed_zone():
    assert "AT TIME ZONE 'Europe/Kiev'" in "\n".join(query.sql for query in load_queries("Europe/Kiev", "telegram_lake_test"))


def test_generating_the_list_keeps_the_named_zones_tzdata_also_has_plus_utc():
    index = "\n".join([
        "# DO NOT REMOVE OR MODIFY EXISTING ENTRIES",
        "1 -14:00",
        "841 +00:01",
        "1681 Africa/Abidjan",
        "1875 America/Sao_Paulo",
        "# 2180 EST  # not in java.time",
        "2999 Mars/Olympus",
        "2230 America/Nuuk",
    ])

    text = zone_list_text(
        index, ["America/Sao_Paulo", "Africa/Abidjan", "America/Nuuk", "EST", "UTC", "Europe/Kyiv"],
        trino_source="0123abcd", tzdata_version="2099.1",
    )

    lines = text.splitlines()
    assert [line for line in lines if not line.startswith("#")] == [
        "Africa/Abidjan", "America/Nuuk", "America/Sao_Paulo", "UTC",
    ]
    assert "# Trino index: trinodb/trino core/trino-spi/src/main/resources/io/trino/spi/type/zone-index.properties " \
        "at 0123abcd (last entry: 2230 America/Nuuk)" in lines
    assert "# tzdata: 2099.1 (its `zones` file; pinned in lambdas/requirements.txt)" in lines
    with pytest.raises(ValueError, match="not Trino's zone-index.properties"):
        zone_list_text("<html>", [], trino_source="x", tzdata_version="y")


@pytest.mark.parametrize(
    ("zone", "years", "skipped"),
    [
        ("America/New_York", (2026, 2046), "02:00-02:59"),
        ("Europe/London", (2026, 2046), "01:00-01:59"),
        ("Australia/Lord_Howe", (2026, 2046), "02:00-02:29"),
        ("Pacific/Chatham", (2026, 2046), "02:45-03:44"),
        ("America/Santiago", (2026, 2046), "00:00-00:59"),
        ("America/Toronto", (1919, 1919), "00:00-00:29, 23:30-23:59"),  # 23:30 jumped to 00:30 that year
        ("America/Sao_Paulo", (2026, 2046), ""),
        ("America/Sao_Paulo", (2018, 2018), "00:00-00:59"),
        ("Asia/Kolkata", (2026, 2046), ""),
        ("UTC", (2026, 2046), ""),
    ],
)
def test_skipped_local_times_are_the_spring_forward_gaps_of_those_years(zone, years, skipped):
    assert describe(skipped_local_times(zone, *years)) == skipped


def test_a_schedule_time_is_skipped_only_inside_a_gap():
    gaps = skipped_local_times("America/New_York", 2026, 2046)

    assert [time_zones.is_skipped(time(*hour_minute), gaps) for hour_minute in [(1, 59), (2, 0), (2, 59), (3, 0)]] == [
        False, True, True, False,
    ]
