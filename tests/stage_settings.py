"""cdk.json's context and its stages, with one stage's settings changed: for config and template tests.

No CDK import: the config tests stay pure.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from stacks.config import PROJECT_ROOT

CDK_CONTEXT: dict[str, Any] = json.loads((PROJECT_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
STAGES: dict[str, Any] = CDK_CONTEXT["stages"]


def stages_with(stage: str, **overrides: Any) -> dict[str, Any]:
    """cdk.json's stages with some settings of one stage replaced (a key set to None is removed)."""
    stages = copy.deepcopy(STAGES)
    stages[stage].update(overrides)
    stages[stage] = {key: value for key, value in stages[stage].items() if value is not None}
    return stages
