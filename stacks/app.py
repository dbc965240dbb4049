"""The CDK app of one stage: its three stacks, their tags and the cdk-nag AwsSolutions checks."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.config import PROJECT, STAGE_KEY, STAGES_KEY, ConfigError, StageConfig, check_context_keys, load_stage
from stacks.etl import EtlStack
from stacks.github import add_github_access, add_oidc_provider
from stacks.ingestion import IngestionStack
from stacks.presentation import PresentationStack


def build_app(app: cdk.App, *, nag: bool = True) -> list[cdk.Stack]:
    """Add the stage chosen with `-c stage=NAME` (default dev) to `app`; return its stacks in deploy order:
    Ingestion, Etl and Presentation; then, when cdk.json asks for them, GitHub's OIDC provider (shared by every
    stage of the account) and the stage's GitHub roles."""
    check_context_keys(app.node.get_all_context())  # cdk.json's and `-c`: a misspelled key is never ignored
    stages = app.node.try_get_context(STAGES_KEY)
    if stages is None:
        raise ConfigError("no `stages` in the CDK context (cdk.json)")
    config = load_stage(stages, app.node.try_get_context(STAGE_KEY))
    environment = _environment(config)
    project_tag = {"project": PROJECT}
    # No stage tag: every stage's app must produce the very same template for the shared provider stack.
    provider = add_oidc_provider(app, env=environment, tags=project_tag)
    stage_tags = {**project_tag, "stage": config.stage}
    common = {"env": environment, "tags": stage_tags}

    ingestion = IngestionStack(
        app, config.stack_name("Ingestion"), config=config,
        description="Telegram webhook -> raw S3 bucket", **common,
    )
    etl = EtlStack(
        app, config.stack_name("Etl"), config=config, ingestion=ingestion,
        description="Daily raw JSON -> Parquet compaction", **common,
    )
    presentation = PresentationStack(
        app, config.stack_name("Presentation"), config=config, ingestion=ingestion, etl=etl,
        description="Glue tables, Athena workgroup, saved queries (and the Athena compaction engine when chosen)", **common,
    )
    github = add_github_access(app, config=config, provider=provider, **common)
    stacks = [ingestion, etl, presentation, *(stack for stack in (provider, github) if stack)]
    # Stack tags reach what CloudFormation creates implicitly; these put each stack's tags on every resource
    # in its template too.
    for stack in stacks:
        for key, value in stack.tags.tag_values().items():
            cdk.Tags.of(stack).add(key, value)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks


def _environment(config: StageConfig) -> cdk.Environment | None:
    """Account and region from the config; env-agnostic (deploy wherever the credentials point) when absent."""
    if config.account is None and config.region is None:
        return None
    return cdk.Environment(account=config.account, region=config.region)
