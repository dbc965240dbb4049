"""`python -m tools chats`: the chats the ingest saw, against moto (deployed) and the local stack (`--local`).

Every run goes through `tools.__main__.main`; a failure is one `error: ...` line, never a traceback.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone

import boto3
import pytest
from moto import mock_aws

import tools.__main__
from lambdas.common.layout import CHAT_LINKS_PREFIX, CHATS_SEEN_PREFIX, chat_link_key, chats_seen_key, today
from lambdas.ingest.chats import Chat, ChatsSeen
from stacks import outputs
from stacks.config import load_from_cdk_json
from tools.operate.chats import COUNTS_NOTE, allowlist_warning
from tools.local.stack import LocalStack, deliver, telegram_json

DEV = load_from_cdk_json("dev")
STACK = DEV.stack_name("Ingestion")
BUCKET = "telegram-lake-dev-raw-bucket"
ALLOWED = DEV.allowed_chat_ids[0]
STRANGER_GROUP = -1005550001111
PRIVATE_CHAT = 4242
UPGRADED = -1007770001111  # continues ALLOWED after a (pretend) upgrade
TODAY = today(DEV.timezone)


@pytest.fixture
def aws():
    with mock_aws():
        yield boto3.client("s3")


@pytest.fixture
def deployed(aws):
    """The Ingestion stack's outputs in moto, and its raw bucket."""
    template = {
        "Resources": {"RawBucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {outputs.RAW_BUCKET_NAME: {"Value": BUCKET}},
    }
    boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    aws.create_bucket(Bucket=BUCKET)
    return aws


def seen(s3, chat: Chat, *, days_ago: int = 0, container: str = "c1", stored: int = 0, skipped: int = 0,
         kind: str = "message", allowlisted: bool | None = None, hour: int = 12) -> None:
    """Store one container's record of `chat` as the ingest writes it."""
    day = TODAY - timedelta(days=days_ago)
    when = datetime.combine(day, time(hour), tzinfo=timezone.utc)
    allowed = stored > 0 if allowlisted is None else allowlisted
    records = ChatsSeen(container)
    record = None
    for outcome, count in (("stored", stored), ("skipped", skipped)):
        for _ in range(count):
            record = records.observe(day, chat, kind, outcome, allowed, when)
    s3.put_object(Bucket=BUCKET, Key=record.key, Body=record.to_json())


def group(chat_id: int, title: str, chat_type: str = "supergroup") -> Chat:
    return Chat(id=chat_id, type=chat_type, title=title, username=None)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = tools.__main__.main(["chats", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_lists_each_chat_with_its_counts_and_whether_it_is_allowlisted_now(deployed, capsys):
    seen(deployed, group(ALLOWED, "Our group"), stored=3)
    seen(deployed, group(ALLOWED, "Our group"), stored=2, container="c2", days_ago=1)  # summed over both
    seen(deployed, group(STRANGER_GROUP, "Strangers"), skipped=4)
    seen(deployed, group(UPGRADED, "Our group, upgraded"), stored=1)
    seen(deployed, Chat(PRIVATE_CHAT, "private", None, "ana"), skipped=1)
    deployed.put_object(Bucket=BUCKET, Key=chat_link_key(UPGRADED, ALLOWED), Body=b"{}")

    code, out, err = run(capsys, "--stage", "dev")

    assert (code, err) == (0, "")
    rows = {int(line.split("│")[1]): line for line in out.splitlines() if line.count("│") > 5
            and line.split("│")[1].strip().lstrip("-").isdigit()}
    assert set(rows) == {ALLOWED, STRANGER_GROUP, UPGRADED, PRIVATE_CHAT}
    assert cells(rows[ALLOWED])[:6] == [str(ALLOWED), "supergroup", "Our group", "5", "5", "0"]
    assert cells(rows[ALLOWED])[-1] == "yes (cdk.json)"
    assert cells(rows[STRANGER_GROUP])[1:6] == ["supergroup", "Strangers", "4", "0", "4"]
    assert cells(rows[STRANGER_GROUP])[-1] == "no"
    assert cells(rows[UPGRADED])[-1] == f"yes (upgraded from {ALLOWED})"
    assert cells(rows[PRIVATE_CHAT])[1:3] == ["private", "@ana"]
    assert f"{ALLOWED} -> {UPGRADED}" in out
    assert " ".join(COUNTS_NOTE.split()[:8]) in " ".join(out.split())  # the table's caption


HOSTILE_TITLE = "\x1b]0;owned\x07\x1b[2J\u202eevil"  # retitles and clears the terminal, reverses the text


def test_what_a_chat_or_telegram_wrote_is_printed_as_plain_text(deployed, capsys):
    """A group's title is whatever its members chose: rich markup, emoji codes and escape sequences in any name
    or type are shown as text, never interpreted (`[/r/python]` used to crash the table)."""
    seen(deployed, group(STRANGER_GROUP, "[/r/python] group :smile:"), skipped=3)
    seen(deployed, Chat(PRIVATE_CHAT, "[bold]private", None, "ana[/]"), skipped=1, kind="[red]message")
    seen(deployed, group(-1005550002222, "\x1b[2J\x07\u202eevil"), skipped=2)

    code, out, err = run(capsys, "--stage", "dev")

    assert code == 0
    rows = {cells(line)[0]: cells(line) for line in out.splitlines() if line.count("│") > 5}
    assert rows[str(STRANGER_GROUP)][1:3] == ["supergroup", "[/r/python] group :smile:"]
    assert rows[str(PRIVATE_CHAT)][1:3] == ["[bold]private", "@ana[/]"]
    assert rows[str(PRIVATE_CHAT)][6] == "[red]message"
    assert rows["-1005550002222"][2] == "\\u001b[2J\\u0007\\u202eevil"
    assert "[/r/python] group :smile:" in err  # the warning names the busiest group, as plain text too
    assert not set(out + err) & set("\x1b\x07\u202e😄")


def test_json_reads_back_the_exact_names_and_holds_nothing_a_terminal_acts_on(deployed, capsys):
    seen(deployed, group(STRANGER_GROUP, HOSTILE_TITLE), skipped=1)

    code, out, err = run(capsys, "--stage", "dev", "--format", "json")

    assert code == 0
    assert [chat["title"] for chat in json.loads(out)["chats"]] == [HOSTILE_TITLE]
    assert not set(out + err) & set("\x1b\x07\u202e")


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.split("│")[1:-1]]


def test_json_lists_the_same_report(deployed, capsys):
    seen(deployed, group(ALLOWED, "Our group"), stored=2, kind="edited_message")
    seen(deployed, group(ALLOWED, "Our group"), skipped=1, container="c2", allowlisted=False, hour=13)
    deployed.put_object(Bucket=BUCKET, Key=chat_link_key(UPGRADED, ALLOWED), Body=b"{}")

    code, out, _ = run(capsys, "--stage", "dev", "--format", "json")

    report = json.loads(out)
    assert code == 0
    assert (report["stage"], report["from"], report["to"]) == (
        "dev", (TODAY - timedelta(days=6)).isoformat(), TODAY.isoformat())
    (chat,) = report["chats"]
    assert chat == {
        "chat_id": ALLOWED, "chat_type": "supergroup", "title": "Our group", "username": None,
        "updates": {"stored": 2, "skipped": 1}, "update_types": ["edited_message", "message"],
        "first_seen": f"{TODAY}T12:00:00.000+00:00", "last_seen": f"{TODAY}T13:00:00.000+00:00",
        "allowlisted": True, "allowlisted_as": "yes (cdk.json)", "allowlisted_by_ingest": False,
    }
    assert [(link["old"], link["new"]) for link in report["links"]] == [(ALLOWED, UPGRADED)]
    assert report["counts_note"] == COUNTS_NOTE and "per ingest container" in COUNTS_NOTE
    assert len(report["warnings"]) == 1 and "redeploy" in report["warnings"][0]


def test_records_written_before_batching_are_read_their_duplicates_counted_as_stored(deployed, capsys):
    """Older ingests counted a redelivery as `duplicate`; it is an accepted update now, and both kinds of record
    sum alike."""
    old = {
        "chat_id": ALLOWED, "day": TODAY.isoformat(), "container_id": "old", "chat_type": "supergroup",
        "title": "Our group", "username": None, "updates": {"stored": 4, "duplicate": 2, "skipped": 0},
        "update_types": ["message"], "first_seen": f"{TODAY}T10:00:00.000+00:00",
        "last_seen": f"{TODAY}T11:00:00.000+00:00", "allowlisted": True,
    }
    deployed.put_object(Bucket=BUCKET, Key=chats_seen_key(TODAY, ALLOWED, "old"), Body=json.dumps(old).encode())
    seen(deployed, group(ALLOWED, "Our group"), stored=3, container="new")

    code, out, _ = run(capsys, "--stage", "dev", "--format", "json")

    (chat,) = json.loads(out)["chats"]
    assert (code, chat["updates"], chat["allowlisted_by_ingest"]) == (0, {"stored": 9, "skipped": 0}, True)


def test_only_the_last_n_days_are_read(deployed, capsys):
    seen(deployed, group(ALLOWED, "Our group"), stored=1)
    seen(deployed, group(ALLOWED, "Our group"), stored=10, days_ago=2)
    seen(deployed, group(STRANGER_GROUP, "Strangers"), skipped=1, days_ago=3)

    _, out, _ = run(capsys, "--stage", "dev", "--days", "3", "--format", "json")
    assert [(chat["chat_id"], chat["updates"]["stored"]) for chat in json.loads(out)["chats"]] == [(ALLOWED, 11)]


def test_when_chats_write_but_none_is_allowlisted_it_says_exactly_what_to_do(deployed, capsys):
    seen(deployed, Chat(PRIVATE_CHAT, "private", None, "ana"), skipped=9)
    seen(deployed, group(STRANGER_GROUP, "The real group"), skipped=2)

    code, out, err = run(capsys, "--stage", "dev")

    assert code == 0
    assert err.startswith("WARNING: 2 chat(s) wrote to the bot in the last 7 day(s), but none is allowlisted")
    assert f"e.g. {STRANGER_GROUP}, The real group" in err  # the group, though the private chat wrote more
    assert "cdk.json context.stages.dev.allowed_chat_ids" in err
    assert "make deploy STAGE=dev" in err
    assert str(STRANGER_GROUP) in out


def test_a_chat_allowlisted_in_cdk_json_but_skipped_by_the_deployed_ingest_asks_for_a_redeploy(deployed, capsys):
    seen(deployed, group(ALLOWED, "Our group"), skipped=3)
    code, _, err = run(capsys, "--stage", "dev")
    assert code == 0
    assert err == (f"WARNING: cdk.json allowlists {ALLOWED} for stage dev, but the deployed ingest skipped its "
                   "latest update: redeploy (`make deploy STAGE=dev`).\n")


def test_when_nothing_was_seen_it_says_so_and_what_to_check(deployed, capsys):
    code, out, err = run(capsys, "--stage", "dev")
    assert code == 0
    assert f"no chat wrote to the bot from {TODAY - timedelta(days=6)} to {TODAY} (stage dev)" in err
    assert "python -m tools webhook info" in err and "privacy mode" in err
    assert "WARNING" not in err


def test_allowlist_warning_for_webhook_set(deployed):
    assert allowlist_warning(DEV, deployed, BUCKET) is None  # a fresh deploy: nobody wrote yet
    seen(deployed, group(STRANGER_GROUP, "Strangers"), skipped=1)
    warning = allowlist_warning(DEV, deployed, BUCKET)
    assert "none is allowlisted for stage dev" in warning and "allowed_chat_ids" in warning
    seen(deployed, group(ALLOWED, "Our group"), stored=1)
    assert allowlist_warning(DEV, deployed, BUCKET) is None


# ---- clear errors


def test_a_stage_that_is_not_deployed_is_one_clear_error(aws, capsys):
    code, out, err = run(capsys, "--stage", "dev")
    assert (code, out) == (1, "")
    assert err == f"error: stack {STACK} is not deployed (run `make deploy STAGE=dev`)\n"


def test_an_unreadable_bucket_is_one_clear_error(deployed, capsys):
    deployed.delete_bucket(Bucket=BUCKET)
    code, _, err = run(capsys, "--stage", "dev")
    assert code == 1
    assert err.startswith(f"error: cannot list s3://{BUCKET}/{CHAT_LINKS_PREFIX}: ") and "NoSuchBucket" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("body, reason", [
    (b"not json", "not JSON"),
    (b'{"chat_id": 1}', "`updates` must count exactly stored, skipped (or stored, duplicate, skipped)"),
])
def test_a_bad_record_is_one_error_naming_the_object(deployed, capsys, body, reason):
    key = chats_seen_key(TODAY, STRANGER_GROUP, "c1")
    deployed.put_object(Bucket=BUCKET, Key=key, Body=body)
    code, _, err = run(capsys, "--stage", "dev")
    assert code == 1
    assert err.startswith(f"error: s3://{BUCKET}/{key} is not a chats-seen record: {reason}")


def test_a_record_stored_under_another_key_is_refused(deployed, capsys):
    seen(deployed, group(STRANGER_GROUP, "Strangers"), skipped=1)
    record = deployed.get_object(Bucket=BUCKET, Key=chats_seen_key(TODAY, STRANGER_GROUP, "c1"))["Body"].read()
    moved = chats_seen_key(TODAY, ALLOWED, "c1")
    deployed.put_object(Bucket=BUCKET, Key=moved, Body=record)
    code, _, err = run(capsys, "--stage", "dev")
    assert code == 1
    assert f"s3://{BUCKET}/{moved} is not a chats-seen record: it describes" in err


def test_a_bad_link_key_is_one_error_naming_it(deployed, capsys):
    deployed.put_object(Bucket=BUCKET, Key=f"{CHAT_LINKS_PREFIX}notes.txt", Body=b"")
    code, _, err = run(capsys, "--stage", "dev")
    assert code == 1
    assert err.startswith(f"error: s3://{BUCKET}/{CHAT_LINKS_PREFIX}notes.txt is not a chat link")


@pytest.mark.parametrize("argv, env, message", [
    (["--local"], {}, "--local needs AWS_ENDPOINT_URL"),
    (["--local"], {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "--local needs --raw-bucket (or env RAW_BUCKET)"),
    (["--raw-bucket", "b"], {}, "--raw-bucket only applies with --local"),
])
def test_local_mode_needs_its_endpoint_and_bucket(capsys, monkeypatch, argv, env, message):
    monkeypatch.delenv("RAW_BUCKET", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = run(capsys, *argv)
    assert code == 1 and err.startswith(f"error: {message}")


def test_an_unreachable_local_endpoint_is_one_clear_error(capsys, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    code, _, err = run(capsys, "--local", "--raw-bucket", "raw")
    assert code == 1 and err.startswith("error: cannot list s3://raw/") and err.count("\n") == 1


@pytest.mark.parametrize("days", ["0", "36", "week"])
def test_days_outside_what_is_kept_are_refused(capsys, days):
    with pytest.raises(SystemExit) as exit_info:
        tools.__main__.main(["chats", "--days", days])
    assert exit_info.value.code == 2
    assert "from 1 to 35" in capsys.readouterr().err


# ---- the local stack: the real ingest writes, the command reads


def test_local_lists_what_the_local_ingest_recorded(capsys):
    def message(update_id: int, chat: dict, **fields: object) -> bytes:
        payload = {"message_id": update_id, "date": 1_795_000_000, "chat": chat, "text": "hello", **fields}
        return telegram_json({"update_id": update_id, "message": payload})

    basic_group = {"id": -4005550001, "type": "group", "title": "Basic"}
    with LocalStack(DEV, allowed_chat_ids=[ALLOWED, basic_group["id"]]) as stack:
        for body in (
            message(1, {"id": ALLOWED, "type": "supergroup", "title": "Ours"}),
            message(2, {"id": STRANGER_GROUP, "type": "supergroup", "title": "Strangers"}),
            message(3, basic_group, migrate_to_chat_id=UPGRADED),
            message(4, {"id": UPGRADED, "type": "supergroup", "title": "Basic"}),
        ):
            assert deliver(stack.webhook_url, stack.secret, body).status == 200
        # The stack has set its environment (AWS_ENDPOINT_URL, RAW_BUCKET, ...) for the block, as `local up` prints it.
        capsys.readouterr()  # the ingest's own log lines
        code, out, err = run(capsys, "--stage", "dev", "--local", "--format", "json")
        s3 = stack.client("s3")
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket=stack.raw_bucket).get("Contents", [])]

    assert (code, err) == (0, "")
    report = json.loads(out)
    chats = {chat["chat_id"]: (chat["updates"]["stored"], chat["updates"]["skipped"], chat["allowlisted_as"])
             for chat in report["chats"]}
    assert chats == {
        ALLOWED: (1, 0, "yes (cdk.json)"),
        STRANGER_GROUP: (0, 1, "no"),
        basic_group["id"]: (1, 0, "no"),  # the stack's own allowlist is not the stage's cdk.json
        UPGRADED: (1, 0, "no"),
    }
    assert [(link["old"], link["new"]) for link in report["links"]] == [(basic_group["id"], UPGRADED)]
    assert sum(key.startswith(CHATS_SEEN_PREFIX) for key in keys) == 4
