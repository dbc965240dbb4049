"""The ETL's CloudWatch metrics (EMF): one document per compacted day, charted by the stage's dashboard.

One home for the names, free of AWS imports, so the dashboard can never chart a metric the handler stopped
emitting. The metrics live in the stage's namespace (`TelegramLake/<stage>`, from
POWERTOOLS_METRICS_NAMESPACE) with Powertools' `service` dimension set to `etl`; the day a document is
about travels with it as EMF metadata (`day`), searchable in the function's log group.
"""

SERVICE = "etl"
# The namespace when the function has no POWERTOOLS_METRICS_NAMESPACE: the ingest's default (this package
# ships without lambdas/ingest, so it cannot import it; a test keeps the two equal).
DEFAULT_NAMESPACE = "TelegramLake"

ROWS_WRITTEN = "RowsWritten"  # rows in the day's Parquet file
OBJECTS_READ = "ObjectsRead"  # raw objects read for the day
DUPLICATES_DROPPED = "DuplicatesDropped"  # redeliveries collapsed by the ETL (the ingest collapses the rest)
NON_MESSAGE_UPDATES = "NonMessageUpdates"  # updates without a message, counted and left out
OBJECTS_REJECTED = "ObjectsRejected"  # objects listed in the day's `_rejects.json` instead of failing the day
COMPACTION_SECONDS = "CompactionSeconds"  # how long the day's compaction took

# The day's summary field (lambdas/etl/compact.py DaySummary) behind each metric, and whether it counts.
COUNTS = {
    "rows_written": ROWS_WRITTEN,
    "objects_read": OBJECTS_READ,
    "duplicates": DUPLICATES_DROPPED,
    "skipped": NON_MESSAGE_UPDATES,
    "rejected": OBJECTS_REJECTED,
}
SECONDS = {"seconds": COMPACTION_SECONDS}
