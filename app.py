#!/usr/bin/env python3
"""CDK entry point: `cdk synth -c stage=dev` builds the stage's three stacks."""

import aws_cdk as cdk

from stacks.app import build_app

app = cdk.App()
build_app(app)
app.synth()
