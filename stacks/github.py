"""GitHub Actions' access to a stage through OIDC: no stored AWS keys anywhere.

`TelegramLake-<stage>-GitHub` exists when the stage sets `github_repository`. Its two roles trust only
GitHub's OIDC provider, for tokens issued to sts.amazonaws.com and to that repository (see
stacks/github_access.py for which jobs):

- the deploy role may only assume the stage environment's CDK bootstrap roles that `cdk deploy` uses
  (deploy and file publishing): what a deploy may change is what those roles, and the CloudFormation
  execution role behind them, allow, exactly as for a deploy from a laptop. Beside that it may make the
  reads of `python -m tools doctor`, which `make deploy` runs after `cdk deploy` with the same role, on the
  stage's own resources only (see `grant_doctor_reads`);
- the review role may only read the templates of the stage's own stacks, for `cdk diff`: pull-request code
  runs with it, so it cannot deploy, and cannot read data (the CDK lookup role could read every bucket).

GitHub's OIDC provider is one per account. When the top-level context setting `create_github_oidc_provider`
is true, the app holds its own shared stack, `TelegramLake-GitHubOidcProvider`; otherwise the account's
existing provider is used. Either way its ARN is fixed by the account, so a stage needs no reference to the
stack that made it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from lambdas.common.layout import CHATS_SEEN_PREFIX, PREFIX
from stacks import outputs
from stacks.athena_access import RESULTS_BUCKET_ACTIONS
from stacks.athena_compaction import GLUE_READ_ACTIONS, QUERY_ACTIONS, state_machine_name
from stacks.compliance import acknowledge, nag_resource
from stacks.config import DOCTOR_PROBE_CHAT_ID, PSEUDONYMIZED_TABLE, RAW_TABLE, TABLE, StageConfig
from stacks.daily_run import daily_schedule_name
from stacks.github_access import (
    AUDIENCE, CREATE_PROVIDER_KEY, DEPLOY, OIDC_HOST, PART, PROVIDER_ARN_OUTPUT, PROVIDER_STACK_NAME, REVIEW,
    ROLE_OUTPUTS, creates_oidc_provider, role_name, role_variable, subject,
)
from stacks.references import stack_output
from stacks.storage import bucket_from_output, grant_listing, grant_on_bucket, grant_on_objects

# The bootstrap roles `cdk deploy` assumes: CloudFormation calls, and uploading the file assets. The stage
# has no container images and no context lookups; CloudFormation itself assumes the execution role.
DEPLOY_BOOTSTRAP_ROLES = ("deploy", "file-publishing")
# What `cdk diff --method=template` reads of each stack (the CLI falls back to these credentials when the
# lookup role cannot be assumed).
TEMPLATE_READING = ("cloudformation:DescribeStacks", "cloudformation:GetTemplate")
# The stacks whose outputs `tools doctor` reads, and the resources it checks.
DOCTOR_READS = ("Ingestion", "Etl", "Presentation")
# What Athena does with the caller's rights for an EXPLAIN: write its plan to the workgroup's results bucket.
# Never s3:GetObject there: that bucket also holds what analysts' queries returned.
RESULTS_WRITING = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
STACK_ID_WILDCARD = (
    "A stack's ARN ends in the id CloudFormation gives it at creation; the wildcard stands for that id only, of this "
    "one stack of the stage."
)


def add_oidc_provider(app: cdk.App, **kwargs) -> GitHubOidcProviderStack | None:
    """The account's GitHub OIDC provider stack, only when the context's `create_github_oidc_provider` is true."""
    if not creates_oidc_provider(app.node.try_get_context(CREATE_PROVIDER_KEY)):
        return None
    return GitHubOidcProviderStack(app, PROVIDER_STACK_NAME, **kwargs)


def add_github_access(
    app: cdk.App, *, config: StageConfig, provider: cdk.Stack | None, **kwargs
) -> GitHubAccessStack | None:
    """The stage's GitHub stack when the stage names a repository (None otherwise). Added after every other
    stack of the app: its review role reads them all. Deployed after the provider's stack, when the app has it."""
    if config.github_repository is None:
        return None
    reviewed = [child for child in app.node.children if isinstance(child, cdk.Stack)]
    stack = GitHubAccessStack(
        app, config.stack_name(PART), stage=config.stage, repository=config.github_repository, reviewed=reviewed,
        description=f"GitHub Actions of {config.github_repository}: OIDC roles to deploy and review the stage",
        **kwargs,
    )
    if provider is not None:
        stack.add_stack_dependency(provider, "its roles trust the GitHub OIDC provider that stack creates")
    stack.grant_doctor_reads(config, {part: _stack_named(reviewed, config.stack_name(part)) for part in DOCTOR_READS})
    return stack


def _stack_named(stacks: list[cdk.Stack], name: str) -> cdk.Stack:
    return next(stack for stack in stacks if stack.stack_name == name)


class GitHubOidcProviderStack(cdk.Stack):
    """GitHub's OIDC provider, alone in a stack shared by every stage of the account.

    It is in the app only while cdk.json sets `create_github_oidc_provider: true`: a deploy from a checkout (or
    a stage) without the setting does not touch it, so no "last deploy wins" can remove the provider every
    GitHub role trusts. Kept if the stack is ever deleted: other repositories' roles may trust it too. Its
    output, the provider's ARN, is how `python -m tools target` tells this provider from another project's."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs):
        super().__init__(
            scope, construct_id,
            description="GitHub's OIDC provider of the account, shared by every stage (kept if this stack is deleted)",
            **kwargs,
        )
        provider = iam.OidcProviderNative(self, "Provider", url=f"https://{OIDC_HOST}", client_ids=[AUDIENCE])
        provider.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        cdk.CfnOutput(
            self, PROVIDER_ARN_OUTPUT, value=provider.oidc_provider_arn, description="The provider this stack created"
        )


def oidc_provider_arn(stack: cdk.Stack) -> str:
    """`arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com`, in the stack's account."""
    return stack.format_arn(
        service="iam", region="", resource="oidc-provider", resource_name=OIDC_HOST,
        arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
    )


def bootstrap_role_arn(stack: cdk.Stack, role: str) -> str:
    """The ARN of one of the CDK bootstrap roles of the stack's environment, with the synthesizer's qualifier:
    `cdk-hnb659fds-deploy-role-<account>-<region>`, as `cdk bootstrap` names them."""
    qualifier = stack.synthesizer.bootstrap_qualifier
    return stack.format_arn(
        service="iam", region="", resource="role",
        resource_name=f"cdk-{qualifier}-{role}-role-{stack.account}-{stack.region}",
        arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
    )


class GitHubAccessStack(cdk.Stack):
    """The stage's deploy and review roles for GitHub Actions; `reviewed` are the stacks `cdk diff` reads."""

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: str, repository: str, reviewed: list[cdk.Stack],
        **kwargs,
    ):
        super().__init__(scope, construct_id, **kwargs)
        deploy = self._role(stage, repository, DEPLOY, "deploys the stage with `cdk deploy`")
        for role in DEPLOY_BOOTSTRAP_ROLES:
            deploy.add_to_principal_policy(
                iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[bootstrap_role_arn(self, role)])
            )
        self._deploy = deploy
        review = self._role(stage, repository, REVIEW, "reads the stage's templates for `cdk diff` of pull requests")
        stacks = [*reviewed, self]
        review.add_to_principal_policy(
            iam.PolicyStatement(actions=list(TEMPLATE_READING), resources=[self._stack_arn(s) for s in stacks])
        )
        for stack in stacks:
            acknowledge(
                review, f"AwsSolutions-IAM5[Resource::{nag_resource(self, self._stack_arn(stack))}]", STACK_ID_WILDCARD
            )

    def grant_doctor_reads(self, config: StageConfig, parts: Mapping[str, cdk.Stack]) -> None:
        """What `python -m tools doctor` needs, for the deploy role: the deploy workflow's `make deploy` runs it after
        `cdk deploy`, as the same role (a second role would only move these rights: the job holds one OIDC token).
        Reads of the stage's own resources, named one by one (the bootstrap roles grant none of them), and no read
        of data: the doctor lists keys, and Athena's EXPLAIN plans statements without running them. The one write
        is what Athena does for any query: the plan, written to the workgroup's results bucket.

        The resources whose names CloudFormation generates are the other stacks' exported outputs: while this stack
        imports one, CloudFormation keeps it fixed (see stacks/references.py).
        """
        role = self._deploy
        ingestion, etl, presentation = (parts[part] for part in DOCTOR_READS)

        def allow(actions: Sequence[str], *resources: str) -> None:
            iam.Grant.add_to_principal(grantee=role, actions=list(actions), resource_arns=list(resources))

        stack_arns = [self._stack_arn(part) for part in parts.values()]
        allow(["cloudformation:DescribeStacks"], *stack_arns)
        # The webhook probe sends the secret token, then reads the ingest's records of the probe's chat (a chat no
        # stage can allowlist: never anyone's data); the last compacted day is the newest day's key in the enriched
        # bucket (or a day without raw updates).
        secret = stack_output(self, producer=ingestion, output_id=outputs.WEBHOOK_SECRET_ARN)
        allow(["secretsmanager:GetSecretValue"], secret)
        raw = bucket_from_output(self, "RawBucket", producer=ingestion, output_id=outputs.RAW_BUCKET_NAME)
        enriched = bucket_from_output(self, "EnrichedBucket", producer=etl, output_id=outputs.ENRICHED_BUCKET_NAME)
        for bucket in (raw, enriched):
            grant_listing(bucket, role, PREFIX)
        probe_records = f"{CHATS_SEEN_PREFIX}*/{DOCTOR_PROBE_CHAT_ID}/"
        grant_listing(raw, role, probe_records)
        grant_on_objects(raw, role, ["s3:GetObject"], f"{probe_records}*")
        probe_wildcard = (
            "The ingest's records of the doctor's probe chat, one per day and ingest container, named by both: a "
            "chat no stage can allowlist, whose records hold only the probe's own counts."
        )
        topic = stack_output(self, producer=ingestion, output_id=outputs.ALARM_TOPIC_ARN)
        allow(["sns:ListSubscriptionsByTopic"], topic)
        # EXPLAIN in the workgroup, which reads the tables' definitions as the caller (as does the doctor's GetTable).
        workgroup = config.athena_workgroup
        allow(QUERY_ACTIONS, self.format_arn(service="athena", resource="workgroup", resource_name=workgroup))
        database = config.glue_database
        allow(
            GLUE_READ_ACTIONS,
            self.format_arn(service="glue", resource="catalog"),
            self.format_arn(service="glue", resource="database", resource_name=database),
            *(self.format_arn(service="glue", resource="table", resource_name=f"{database}/{table}")
              for table in (TABLE, RAW_TABLE, *((PSEUDONYMIZED_TABLE,) if config.pseudonymized else ()))),
        )
        results = bucket_from_output(
            self, "ResultsBucket", producer=presentation, output_id=outputs.RESULTS_BUCKET_NAME
        )
        grant_on_bucket(results, role, RESULTS_BUCKET_ACTIONS)
        grant_on_objects(results, role, RESULTS_WRITING, "*")
        schedule = f"default/{daily_schedule_name(config)}"
        slash = cdk.ArnFormat.SLASH_RESOURCE_NAME
        allow(["scheduler:GetSchedule"], self.format_arn(
            service="scheduler", resource="schedule", resource_name=schedule, arn_format=slash
        ))
        wildcards = {arn: STACK_ID_WILDCARD for arn in stack_arns}
        wildcards[raw.arn_for_objects(f"{probe_records}*")] = probe_wildcard
        wildcards[results.arn_for_objects("*")] = (
            "Athena writes each EXPLAIN's plan under a key named by its query id; the bucket holds nothing but this "
            "workgroup's results, and none of them may be read."
        )
        if config.etl_engine_is_athena:
            allow(["states:DescribeStateMachine"], self.format_arn(
                service="states", resource="stateMachine", resource_name=state_machine_name(config),
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            ))
            allow(["states:ValidateStateMachineDefinition"], "*")
            wildcards["*"] = (
                "ValidateStateMachineDefinition checks the definition sent in the request against the States "
                "Language; it reads and changes no resource."
            )
        for resource, reason in wildcards.items():
            acknowledge(role, f"AwsSolutions-IAM5[Resource::{nag_resource(self, resource)}]", reason)

    def _role(self, stage: str, repository: str, purpose: str, what: str) -> iam.Role:
        role = iam.Role(
            self,
            f"{purpose.capitalize()}Role",
            role_name=role_name(purpose, stage),
            description=f"GitHub Actions of {repository} {what}",
            assumed_by=iam.FederatedPrincipal(
                oidc_provider_arn(self),
                conditions={
                    "StringEquals": {
                        f"{OIDC_HOST}:aud": AUDIENCE,
                        f"{OIDC_HOST}:sub": subject(repository, purpose, stage),
                    }
                },
                assume_role_action="sts:AssumeRoleWithWebIdentity",
            ),
        )
        cdk.CfnOutput(
            self,
            ROLE_OUTPUTS[purpose],
            value=role.role_arn,
            description=f"Set as the GitHub repository variable {role_variable(purpose, stage)}",
        )
        return role

    def _stack_arn(self, stack: cdk.Stack) -> str:
        return self.format_arn(
            service="cloudformation", resource="stack", resource_name=f"{stack.stack_name}/*",
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )
