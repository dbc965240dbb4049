"""The ingest's CloudWatch metrics (EMF): emitted by the handler, alarmed on by the Ingestion stack.

One home for the names, free of AWS imports, so the stack's alarms can never watch a metric the handler
stopped emitting. Every metric is a Sum of counts in the stage's own namespace (`TelegramLake/<stage>`,
from POWERTOOLS_METRICS_NAMESPACE), with Powertools' `service` dimension.
"""

SERVICE = "ingest"
DEFAULT_NAMESPACE = "TelegramLake"

# One per request, by outcome.
STORED = "Stored"  # an update accepted by the raw delivery stream (Firehose), a redelivery too: the readers keep one
SKIPPED = "Skipped"  # not from an allowlisted chat (or chat-less): answered 200, not stored
REJECTED = "Rejected"  # 4xx: bad token, bad body, update_id out of range
FAILED = "Failed"  # 5xx: the update was not accepted (or its state not read or stored); Telegram redelivers

# Beside the outcome.
UNAUTHORIZED = "Unauthorized"  # a missing or wrong secret token (also counted as Rejected)
SKIPPED_FROM_GROUP = "SkippedFromGroup"  # a group, supergroup or channel that is not allowlisted wrote
UNKNOWN_UPDATE_TYPE = "UnknownUpdateType"  # a type newer than this code, stored all the same
CHAT_MIGRATED = "ChatMigrated"  # an allowlisted group's new id was learned (basic group -> supergroup)
CHAT_RECORD_FAILED = "ChatRecordFailed"  # a chat's chats-seen record could not be written

OUTCOMES = (STORED, SKIPPED, REJECTED, FAILED)


def namespace(project: str, stage: str) -> str:
    """Each stage's metrics in their own namespace: one stage's failures never raise another's alarms."""
    return f"{project}/{stage}"
