"""GitHub Actions' access to a stage through OIDC: no stored AWS keys anywhere.

`TelegramLake-<stage>-GitHub` exists when the stage sets `github_repository`. Its two roles trust only
GitHub's OIDC provider, for tokens issued to sts.amazonaws.com and to that repository (see
stacks/github_access.py for which jobs):

- the deploy role may only assume the stage environment's CDK bootstrap roles that `cdk deploy` uses
  (deploy and file publishing): what a deploy may change is what those roles, and the CloudFormation
  execution role behind them, allow, exactly as for a deploy from a laptop;
- the review role may only read the templates of the stage's own stacks, for `cdk diff`: pull-request code
  runs with it, so it cannot deploy, and cannot read data (the CDK lookup role could read every bucket).

GitHub's OIDC provider is one per account. When the top-level context setting `create_github_oidc_provider`
is true, the app holds its own shared stack, `TelegramLake-GitHubOidcProvider`; otherwise the account's
existing provider is used. Either way its ARN is fixed by the account, so a stage needs no reference to the
stack that made it.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.compliance import acknowledge, nag_resource
from stacks.config import StageConfig
from stacks.github_access import (
    AUDIENCE, CREATE_PROVIDER_KEY, DEPLOY, OIDC_HOST, PART, PROVIDER_ARN_OUTPUT, PROVIDER_STACK_NAME, REVIEW,
    ROLE_OUTPUTS, creates_oidc_provider, role_name, role_variable, subject,
)

# The bootstrap roles `cdk deploy` assumes: CloudFormation calls, and uploading the file assets. The stage
# has no container images and no context lookups; CloudFormation itself assumes the execution role.
DEPLOY_BOOTSTRAP_ROLES = ("deploy", "file-publishing")
# What `cdk diff --method=template` reads of each stack (the CLI falls back to these credentials when the
# lookup role cannot be assumed).
TEMPLATE_READING = ("cloudformation:DescribeStacks", "cloudformation:GetTemplate")


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
    return stack


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
        review = self._role(stage, repository, REVIEW, "reads the stage's templates for `cdk diff` of pull requests")
        stacks = [*reviewed, self]
        review.add_to_principal_policy(
            iam.PolicyStatement(actions=list(TEMPLATE_READING), resources=[self._stack_arn(s) for s in stacks])
        )
        for stack in stacks:
            acknowledge(
                review,
                f"AwsSolutions-IAM5[Resource::{nag_resource(self, self._stack_arn(stack))}]",
                "A stack's ARN ends in the id CloudFormation gives it at creation; the wildcard stands for that "
                "id only, of this one stack of the stage.",
            )

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
