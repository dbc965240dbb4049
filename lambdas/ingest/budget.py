"""The ingest's time budget: how long one webhook request may wait on AWS, and the function timeout that
holds it. No boto3 here: the Ingestion stack imports FUNCTION_TIMEOUT_SECONDS for the Lambda's timeout.

A hung Firehose, S3 or Secrets Manager call must end in the handler's own `failed` path (a 5xx that Telegram
redelivers, a log line, the Failed metric), never in a Lambda timeout (no log line of ours, no metric) or in
API Gateway's 29 s integration timeout. So every call is bounded, and the worst case of every call one
request can make, one after the other, fits in the function timeout with room for the handler's own work.
"""

# In-region TCP + TLS to Firehose, S3 or Secrets Manager takes milliseconds.
CONNECT_TIMEOUT_SECONDS = 0.5
# A PutRecord or PutObject of a few kilobytes, one ListObjectsV2 page or a GetSecretValue normally answers in tens
# of ms.
READ_TIMEOUT_SECONDS = 1.0
# The first try and one retry; after that Telegram's redelivery of the 5xx is the retry.
TOTAL_MAX_ATTEMPTS = 2
# botocore's legacy retry mode sleeps rand(0, 1) * 2**0 s before the first retry and obeys no delay the
# server asks for; standard mode adds up to 5 s more for an `x-amz-retry-after` header, unbounded here.
RETRY_MODE = "legacy"
RETRY_DELAY_MAX_SECONDS = 1.0

# The most AWS calls one request makes in sequence: a cold container's first update is a migration notice
# (GetSecretValue, ListObjectsV2 of the chat links, PutObject of the link, PutRecord of the update to the raw
# delivery stream, PutObject of the chats-seen record). A warm container re-reads the secret instead of reading
# it cold: still one call. The links are listed at most once per request, in one page (layout.CHAT_LINKS_PREFIX
# holds one key per group upgrade).
MAX_CALLS_PER_REQUEST = 5

# One call, all attempts: each may connect and then wait for the whole read timeout.
WORST_CALL_SECONDS = TOTAL_MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + (
    TOTAL_MAX_ATTEMPTS - 1
) * RETRY_DELAY_MAX_SECONDS
WORST_REQUEST_SECONDS = MAX_CALLS_PER_REQUEST * WORST_CALL_SECONDS

# API Gateway answers 504 after 29 s whatever the function does.
API_GATEWAY_TIMEOUT_SECONDS = 29
# Parsing, logging, the EMF flush: milliseconds; the rest is slack.
HANDLER_MARGIN_SECONDS = 4
FUNCTION_TIMEOUT_SECONDS = 24
# The function's memory: its work is a JSON parse and one or two small calls (bench/ingest.py measures it).
INGEST_MEMORY_MB = 256

# How often a container may re-read the webhook secret when a presented token does not match it: a new
# token after a rotation is accepted within this time, and a stream of wrong tokens costs at most one
# GetSecretValue per container per interval.
SECRET_REFRESH_SECONDS = 30
