-- Every raw object of the days read, with what the ETL Lambda (lambdas/etl/day.py) makes of it: an update, a
-- duplicate, or a reject with its reason. One object per `<update_id>.json` key (the first key in sorted order),
-- an update redelivered after midnight kept only by the earlier day, one line of standard JSON whose update_id
-- matches its key, a known message type's payload an object. Each update with its type (the field's name: the
-- first known type, else the alphabetically first field), that field's value as JSON, and whether it becomes a
-- row (a known message type, or a newer type whose payload has a Message's shape).
-- analytics/__init__.py fills in the database, the first and last raw day (SQL date expressions; the day before
-- the first is read too, for its keys only) and the type lists, taken from the Python code.
WITH objects AS (
    -- One row per object, in one pass over the raw table (Athena reads a WITH query again at each use): the
    -- ingest names each object after its update, `telegram/context_date=D/<update_id>.json`, and a valid
    -- object is exactly one line of text. (An empty object has no line: Athena never sees it.)
    SELECT
        context_date,
        "$path" AS path,
        TRY_CAST(regexp_extract("$path", '/context_date=[^/]+/([0-9]{1,19})\.json$', 1) AS BIGINT) AS key_id,
        count(*) AS lines_in_object,
        min(line) AS line
    FROM {{database}}.telegram_raw
    WHERE context_date BETWEEN {{first_day}} - INTERVAL '1' DAY AND {{last_day}}
    GROUP BY context_date, "$path"
),
ranked AS (
    -- Deduplicated from the keys alone, as the ETL plans its GETs: the first key of an update in its day,
    -- unless the day before stored it already (then this is a redelivery after midnight).
    SELECT
        objects.*,
        row_number() OVER (PARTITION BY context_date, key_id ORDER BY path) AS copy_number,
        lag(context_date) OVER (PARTITION BY key_id ORDER BY context_date, path) AS seen_before_on,
        TRY(json_parse(line)) AS document
    FROM objects
),
parsed AS (
    SELECT ranked.*, TRY(CAST(document AS MAP(VARCHAR, JSON))) AS fields
    FROM ranked
    WHERE context_date >= {{first_day}}
),
typed AS (
    SELECT
        parsed.*,
        COALESCE(
            element_at(filter(ARRAY[{{update_types}}], known -> contains(map_keys(fields), known)), 1),
            array_min(filter(map_keys(fields), name -> name <> 'update_id')),
            'unknown'
        ) AS update_type,
        json_format(element_at(fields, 'update_id')) AS stored_update_id
    FROM parsed
),
judged AS (
    SELECT
        context_date,
        path,
        key_id,
        update_type,
        element_at(fields, update_type) AS payload,
        CASE
            WHEN key_id IS NULL THEN 'rejected'
            WHEN copy_number > 1 OR seen_before_on = context_date - INTERVAL '1' DAY THEN 'duplicate'
            WHEN lines_in_object <> 1 OR fields IS NULL OR NOT regexp_like(COALESCE(stored_update_id, ''), '^-?[0-9]+$')
                OR TRY_CAST(stored_update_id AS BIGINT) IS DISTINCT FROM key_id THEN 'rejected'
            WHEN contains(ARRAY[{{message_update_types}}], update_type)
                AND COALESCE(substr(json_format(element_at(fields, update_type)), 1, 1), '') <> '{' THEN 'rejected'
            ELSE 'update'
        END AS outcome,
        CASE
            WHEN key_id IS NULL THEN 'key is not <update_id>.json in the day''s folder'
            WHEN lines_in_object <> 1 THEN 'not one line of JSON: a line break inside the body'
            WHEN document IS NULL THEN 'not valid JSON'
            WHEN fields IS NULL THEN 'not a Telegram Update: not a JSON object'
            WHEN NOT regexp_like(COALESCE(stored_update_id, ''), '^-?[0-9]+$')
                THEN 'not a Telegram Update: no integer update_id'
            WHEN TRY_CAST(stored_update_id AS BIGINT) IS DISTINCT FROM key_id
                THEN 'update_id does not match the object''s name'
            ELSE 'not a Telegram Update: ' || update_type || ' is not an object'
        END AS reason
    FROM typed
)
SELECT
    context_date,
    path,
    key_id AS update_id,
    outcome,
    CASE WHEN outcome = 'rejected' THEN reason END AS reason,
    update_type,
    payload,
    outcome = 'update' AND substr(json_format(payload), 1, 1) = '{' AND (
        contains(ARRAY[{{message_update_types}}], update_type)
        OR (
            NOT contains(ARRAY[{{update_types}}], update_type)
            AND regexp_like(COALESCE(json_format(json_extract(payload, '$.message_id')), ''), '^-?[0-9]+$')
            AND regexp_like(COALESCE(json_format(json_extract(payload, '$.date')), ''), '^-?[0-9]+$')
            AND substr(json_format(json_extract(payload, '$.chat')), 1, 1) = '{'
        )
    ) AS carries_message
FROM judged
