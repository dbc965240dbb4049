"""Size budgets of the Lambda bundles: recorded by the stacks, enforced by `python -m tools check-layers`.

No CDK import here, so the command stays fast.
"""

MIB = 1024 * 1024
# Lambda's limit for a function's code plus all its layers, unzipped ("250 MB").
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * MIB
# The stripped pyarrow layer (about 89 MB on arm64, 101 MB on x86_64): room for the code and the runtime layer.
PYARROW_LAYER_BUDGET_BYTES = 110 * MIB
# CloudFormation metadata key on a layer resource carrying its budget in bytes.
LAYER_BUDGET_METADATA = "telegram-lake:max-unzipped-bytes"
