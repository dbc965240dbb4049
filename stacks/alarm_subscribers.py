"""Who hears a stage's alarms: its `alarm_email`, or whatever an operator subscribed to its alarm topic.

A stage without `alarm_email` still raises every alarm, on a topic that may have no subscriber at all. That is
said at synth (a CDK warning on the topic) and before every deploy (`python -m tools target`), from this one
text. No CDK import: the tools read it without starting the CDK.
"""

from __future__ import annotations

from stacks.config import StageConfig
from stacks.outputs import ALARM_TOPIC_ARN


def unheard_alarms(config: StageConfig) -> str | None:
    """Why nobody may hear the stage's alarms, or None when they are mailed to `alarm_email`."""
    if config.alarm_email:
        return None
    return (
        f"stage {config.stage} sets no `alarm_email`: its alarms notify only the SNS topic in the {ALARM_TOPIC_ARN} "
        f"output of {config.stack_name('Ingestion')}, and nobody hears them unless something is subscribed to it. "
        f"Set `alarm_email` in cdk.json's context.stages.{config.stage} (and confirm the mail AWS sends), or "
        "subscribe a chat or pager integration to that topic."
    )
