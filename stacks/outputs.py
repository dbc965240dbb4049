"""The stacks' CloudFormation output ids: declared by the stacks, read by `tools` (and asserted by the tests).

The stacks publish them and the commands find a deployed stage through them, so each id has this one
home. No CDK import here: the command-line tools use it without paying jsii's start-up cost.
"""

# Ingestion
WEBHOOK_URL = "WebhookUrl"
WEBHOOK_SECRET_ARN = "WebhookSecretArn"
WEBHOOK_API_ID = "WebhookApiId"  # the HTTP API's metrics are dimensioned by its id: the dashboard imports it
DELIVERY_STREAM_NAME = "DeliveryStreamName"  # the raw delivery stream (Firehose) the ingest hands updates to
RAW_BUCKET_NAME = "RawBucketName"
ALARM_TOPIC_ARN = "AlarmTopicArn"
# Etl
ETL_FUNCTION_NAME = "EtlFunctionName"
ENRICHED_BUCKET_NAME = "EnrichedBucketName"
DASHBOARD_URL = "DashboardUrl"
FAILED_RUNS_QUEUE_ARN = "FailedRunsQueueArn"  # the daily run's dead-letter queue, whichever engine runs it
DAILY_SCHEDULE_NAME = "DailyScheduleName"  # in the stack that runs the days: Etl, or Presentation on athena
PSEUDONYM_KEY_ARN = "PseudonymKeyArn"  # the stage's HMAC key: the analysts' pseudonyms and erasures' audit records
# Presentation
WORKGROUP_NAME = "WorkgroupName"
DATABASE_NAME = "DatabaseName"
TABLE_NAME = "TableName"
RAW_TABLE_NAME = "RawTableName"
RESULTS_BUCKET_NAME = "ResultsBucketName"
ANALYST_POLICY_ARN = "AnalystPolicyArn"
ANALYST_WORKGROUP_NAME = "AnalystWorkgroupName"  # only with `analyst_access: pseudonymized`
PSEUDONYMIZED_TABLE_NAME = "PseudonymizedTableName"  # only with `analyst_access: pseudonymized`
COMPACTION_STATE_MACHINE_ARN = "CompactionStateMachineArn"  # only with `etl_engine: athena`
