-- Every stored copy of an update in the raw days read, with what the ETL Lambda (lambdas/etl/day.py, compact.py)
-- makes of it: the update, a duplicate, or a reject with its reason. A day's folder holds batches (`*.jsonl.gz`,
-- written by Firehose), one envelope line per copy (the copy's arrival day and instant, and the update as sent:
-- lambdas/common/envelope.py), and, from before batching, single updates (`<update_id>.json`: one line of JSON
-- whose update_id is the key's). Of the valid copies of an update, the first arrival is the update: the earliest
-- day, then the earliest instant (a single update, which has none, first), then the path, then the md5 of the
-- line; every other copy is a duplicate, and a copy of the day before the first day read only claims its update
-- (a redelivery after midnight belongs to the earlier day). A copy that is no update claims nothing. Each copy
-- comes with its type (the field's name: the first known type, else the alphabetically first field), that
-- field's value as JSON, and whether it becomes a row (a known message type, or a newer type whose payload has a
-- Message's shape).
-- analytics/__init__.py fills in the database, the first and last raw day (SQL date expressions; the day before
-- the first is read too, for its claims only), the type lists and the key's reject reason, from the Python code.
WITH copies AS (
    -- One row per distinct line of a batch, with how many times the batch holds it, and per other object whole
    -- (its lines counted, the smallest kept), in one pass over the raw table (Athena reads a WITH query again at
    -- each use). An empty object has no line: Athena never sees it.
    SELECT
        context_date,
        "$path" AS path,
        CASE
            WHEN regexp_like("$path", '/context_date=[^/]+/[0-9]{1,19}\.json$') THEN 'single'
            WHEN regexp_like("$path", '/context_date=[^/]+/[^/]+\.jsonl(\.gz)?$') THEN 'batch'
        END AS kind,
        count(*) AS lines,
        min(line) AS line
    FROM {{database}}.telegram_raw
    WHERE context_date BETWEEN {{first_day}} - INTERVAL '1' DAY AND {{last_day}}
    GROUP BY
        context_date, "$path", CASE WHEN regexp_like("$path", '/context_date=[^/]+/[^/]+\.jsonl(\.gz)?$') THEN line END
),
parsed AS (
    SELECT
        copies.*,
        TRY_CAST(regexp_extract(path, '/context_date=[^/]+/([0-9]{1,19})\.json$', 1) AS BIGINT) AS key_id,
        TRY(json_parse(line)) AS document
    FROM copies
),
enveloped AS (
    -- A batch line is an envelope: its arrival day and instant, and the update.
    SELECT parsed.*, CASE WHEN kind = 'batch' THEN TRY(CAST(document AS MAP(VARCHAR, JSON))) END AS envelope
    FROM parsed
),
opened AS (
    -- The update: the envelope's `update`, or a single object's document itself.
    SELECT
        enveloped.*,
        TRY(CAST(CASE WHEN kind = 'batch' THEN element_at(envelope, 'update') ELSE document END AS MAP(VARCHAR, JSON)))
            AS fields,
        json_format(element_at(envelope, 'context_date')) AS envelope_day,
        json_format(element_at(envelope, 'received_at')) AS received_text
    FROM enveloped
),
typed AS (
    SELECT
        opened.*,
        COALESCE(
            element_at(filter(ARRAY[{{update_types}}], known -> contains(map_keys(fields), known)), 1),
            array_min(filter(map_keys(fields), name -> name <> 'update_id')),
            'unknown'
        ) AS update_type,
        json_format(element_at(fields, 'update_id')) AS stored_update_id,
        CASE WHEN regexp_like(COALESCE(received_text, ''), '^[0-9]+$') THEN TRY_CAST(received_text AS BIGINT) END
            AS received_at
    FROM opened
),
judged AS (
    SELECT
        context_date,
        path,
        line,
        received_at,
        update_type,
        element_at(fields, update_type) AS payload,
        CASE WHEN regexp_like(COALESCE(stored_update_id, ''), '^-?[0-9]+$') THEN TRY_CAST(stored_update_id AS BIGINT) END
            AS update_id,
        CASE WHEN kind = 'batch' THEN lines ELSE 1 END AS copies,
        CASE
            WHEN kind IS NULL OR (kind = 'single' AND key_id IS NULL) THEN {{key_reject_reason}}
            WHEN kind = 'single' AND lines <> 1 THEN 'not one line of JSON: a line break inside the body'
            WHEN document IS NULL THEN 'not valid JSON'
            WHEN kind = 'batch' AND envelope IS NULL THEN 'not an envelope: not a JSON object'
            WHEN kind = 'batch' AND envelope_day IS DISTINCT FROM '"' || CAST(context_date AS VARCHAR) || '"'
                THEN 'the envelope''s context_date is not the folder''s day'
            WHEN kind = 'batch' AND received_at IS NULL THEN 'the envelope has no arrival instant (received_at)'
            WHEN fields IS NULL THEN 'not a Telegram Update: not a JSON object'
            WHEN NOT regexp_like(COALESCE(stored_update_id, ''), '^-?[0-9]+$')
                THEN 'not a Telegram Update: no integer update_id'
            WHEN TRY_CAST(stored_update_id AS BIGINT) IS NULL THEN 'not a Telegram Update: update_id beyond a bigint'
            WHEN kind = 'single' AND TRY_CAST(stored_update_id AS BIGINT) <> key_id
                THEN 'update_id does not match the object''s name'
            WHEN contains(ARRAY[{{message_update_types}}], update_type)
                AND COALESCE(substr(json_format(element_at(fields, update_type)), 1, 1), '') <> '{'
                THEN 'not a Telegram Update: ' || update_type || ' is not an object'
        END AS reason
    FROM typed
),
ranked AS (
    -- The first arrival among the valid copies of each update (a rejected copy is in a partition of its own).
    SELECT
        judged.*,
        row_number() OVER (
            PARTITION BY reason IS NULL, update_id
            ORDER BY context_date, received_at NULLS FIRST, path, md5(to_utf8(line))
        ) AS arrival
    FROM judged
)
SELECT
    context_date,
    path,
    update_id,
    CASE WHEN reason IS NOT NULL THEN 'rejected' WHEN arrival = 1 THEN 'update' ELSE 'duplicate' END AS outcome,
    reason,
    -- How many copies the row stands for: a batch that holds one line twice (Firehose delivers at least once)
    -- holds a duplicate beside the row's own copy.
    copies,
    update_type,
    payload,
    reason IS NULL AND arrival = 1 AND substr(json_format(payload), 1, 1) = '{' AND (
        contains(ARRAY[{{message_update_types}}], update_type)
        OR (
            NOT contains(ARRAY[{{update_types}}], update_type)
            AND regexp_like(COALESCE(json_format(json_extract(payload, '$.message_id')), ''), '^-?[0-9]+$')
            AND regexp_like(COALESCE(json_format(json_extract(payload, '$.date')), ''), '^-?[0-9]+$')
            AND substr(json_format(json_extract(payload, '$.chat')), 1, 1) = '{'
        )
    ) AS carries_message
FROM ranked
WHERE context_date >= {{first_day}}
