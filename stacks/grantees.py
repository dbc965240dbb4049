"""A customer-managed IAM policy as the grantee of CDK grants, for identities that live outside the app.

CDK's `grant_*` methods and `iam.Grant` give permissions to a principal (a role, a user, a group) the app
creates. Analysts' identities are not the app's: the grants go to a managed policy instead, which their
administrators attach to whatever roles, groups or users they choose. Each grant becomes one statement of
that policy, so the policy is built from the same construct relationships as every other permission here.
"""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam


@jsii.implements(iam.IPrincipal)
class PolicyGrantee:
    """Pass it wherever CDK takes an `IGrantable`: the statement it would add to a role lands in `policy`.

    It answers as a principal of the policy's own account, so a grant on a bucket or other resource of
    that account is made in the identity policy only, never in the resource's policy. It cannot be named
    in a resource or trust policy: a managed policy is not a principal there, so asking for its policy
    fragment (or its assume-role action) fails at synth instead of writing a policy that means nothing.
    """

    def __init__(self, policy: iam.ManagedPolicy):
        self.policy = policy

    @property
    def grant_principal(self) -> iam.IPrincipal:
        return self

    @property
    def principal_account(self) -> str:
        return cdk.Stack.of(self.policy).account

    @property
    def policy_fragment(self) -> iam.PrincipalPolicyFragment:
        raise TypeError(f"{self.policy.node.path} is a managed policy, not a principal: no resource policy can name it")

    @property
    def assume_role_action(self) -> str:
        raise TypeError(f"{self.policy.node.path} is a managed policy, not a principal: nothing can assume it")

    def add_to_principal_policy(self, statement: iam.PolicyStatement) -> iam.AddToPrincipalPolicyResult:
        self.policy.add_statements(statement)
        return iam.AddToPrincipalPolicyResult(statement_added=True, policy_dependable=self.policy)
