-- Raw updates, one row per stored update as the ETL Lambda counts them (lambdas/etl/day.py): one object per
-- `<update_id>.json` key (the first key in sorted order), an update redelivered after midnight kept only by the
-- earlier day, one line of standard JSON whose update_id matches its key. Each with its type (the field's name:
-- the first known type, else the alphabetically first field) and that field's value, as JSON.
-- analytics/__init__.py fills in the database, the first and last raw day (SQL date expressions; the day before
-- the first is read too, for its keys only) and the known types, taken from the Python code.
WITH objects AS (
    -- One row per object, in one pass over the raw table (Athena reads a WITH query again at each use): the
    -- ingest names each object after its update, `telegram/context_date=D/<update_id>.json`, and a valid
    -- object is exactly one line of text.
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
    SELECT
        objects.*,
        row_number() OVER (PARTITION BY context_date, key_id ORDER BY path) AS copy_number,
        lag(context_date) OVER (PARTITION BY key_id ORDER BY context_date, path) AS seen_before_on
    FROM objects
    WHERE key_id IS NOT NULL
),
documents AS (
    -- Deduplicated from the keys alone, as the ETL plans its GETs: the first key of an update in its day,
    -- unless the day before stored it already (then this is a redelivery after midnight).
    SELECT
        context_date,
        key_id,
        TRY(CAST(TRY(json_parse(line)) AS MAP(VARCHAR, JSON))) AS fields
    FROM ranked
    WHERE copy_number = 1
      AND context_date >= {{first_day}}
      AND (seen_before_on IS NULL OR seen_before_on <> context_date - INTERVAL '1' DAY)
      AND lines_in_object = 1
),
typed AS (
    SELECT
        context_date,
        key_id AS update_id,
        fields,
        COALESCE(
            element_at(filter(ARRAY[{{update_types}}], known -> contains(map_keys(fields), known)), 1),
            array_min(filter(map_keys(fields), name -> name <> 'update_id')),
            'unknown'
        ) AS update_type,
        json_format(element_at(fields, 'update_id')) AS stored_update_id
    FROM documents
    WHERE fields IS NOT NULL
),
payloads AS (
    SELECT
        context_date,
        update_id,
        update_type,
        element_at(fields, update_type) AS payload
    FROM typed
    WHERE regexp_like(stored_update_id, '^-?[0-9]+$')
      AND TRY_CAST(stored_update_id AS BIGINT) = update_id
)
SELECT context_date, update_id, update_type, payload
FROM payloads
