-- Raw updates -> enriched rows: the SQL twin of the ETL Lambda's flattening (lambdas/etl/flatten.py), over the
-- raw objects as the ETL judges them (raw_objects.sql). Same 21 columns and types as the `telegram` table, plus
-- context_date, and the same rules: rows for message-like updates only (known message types by name, a newer
-- type when its payload has a Message's shape), message_type by the same detection order, commands clamped to
-- the text, nulls for missing or mistyped fields and for dates no query could read (lambdas/common/reading.py). Tests
-- prove it equal to the ETL, cell by cell, on DuckDB.
-- analytics/__init__.py fills in the raw objects of the days read and the type lists, taken from the Python code.
WITH messages AS (
    SELECT
        context_date,
        update_id,
        update_type,
        payload AS message,
        TRY(CAST(payload AS MAP(VARCHAR, JSON))) AS message_fields
    FROM (
{{raw_objects}}
    ) AS raw_objects
    WHERE carries_message
),
field_texts AS (
    -- Each field as JSON text: its first character says its JSON type.
    SELECT
        context_date,
        update_id,
        update_type,
        message_fields,
        json_format(json_extract(message, '$.message_id')) AS message_id,
        json_format(json_extract(message, '$.from.id')) AS user_id,
        json_format(json_extract(message, '$.from.is_bot')) AS user_is_bot,
        json_format(json_extract(message, '$.from.first_name')) AS user_first_name,
        json_format(json_extract(message, '$.chat.id')) AS chat_id,
        json_format(json_extract(message, '$.chat.type')) AS chat_type,
        json_format(json_extract(message, '$.text')) AS text,
        json_format(json_extract(message, '$.date')) AS sent_at,
        json_format(json_extract(message, '$.caption')) AS caption,
        json_format(json_extract(message, '$.from.last_name')) AS user_last_name,
        json_format(json_extract(message, '$.from.username')) AS user_username,
        json_format(json_extract(message, '$.from.language_code')) AS user_language_code,
        json_format(json_extract(message, '$.chat.title')) AS chat_title,
        json_format(json_extract(message, '$.reply_to_message.message_id')) AS reply_to_message_id,
        json_format(json_extract(message, '$.message_thread_id')) AS message_thread_id,
        json_format(json_extract(message, '$.edit_date')) AS edit_date,
        TRY(CAST(json_extract(message, '$.entities') AS ARRAY(JSON))) AS text_entities,
        TRY(CAST(json_extract(message, '$.caption_entities') AS ARRAY(JSON))) AS caption_entities
    FROM messages
),
typed AS (
    SELECT
        context_date,
        update_id,
        update_type,
        message_fields,
        CASE WHEN regexp_like(message_id, '^-?[0-9]+$') THEN TRY_CAST(message_id AS BIGINT) END AS message_id,
        CASE WHEN regexp_like(user_id, '^-?[0-9]+$') THEN TRY_CAST(user_id AS BIGINT) END AS user_id,
        CASE user_is_bot WHEN 'true' THEN true WHEN 'false' THEN false END AS user_is_bot,
        CASE WHEN substr(user_first_name, 1, 1) = '"' THEN json_extract_scalar(user_first_name, '$') END AS user_first_name,
        CASE WHEN regexp_like(chat_id, '^-?[0-9]+$') THEN TRY_CAST(chat_id AS BIGINT) END AS chat_id,
        CASE WHEN substr(chat_type, 1, 1) = '"' THEN json_extract_scalar(chat_type, '$') END AS chat_type,
        CASE WHEN substr(text, 1, 1) = '"' THEN json_extract_scalar(text, '$') END AS text,
        CASE
            WHEN regexp_like(sent_at, '^[0-9]+$') AND TRY_CAST(sent_at AS BIGINT) <= {{unix_seconds_max}}
            THEN TRY_CAST(sent_at AS BIGINT)
        END AS sent_at,
        CASE WHEN substr(caption, 1, 1) = '"' THEN json_extract_scalar(caption, '$') END AS caption,
        CASE WHEN substr(user_last_name, 1, 1) = '"' THEN json_extract_scalar(user_last_name, '$') END AS user_last_name,
        CASE WHEN substr(user_username, 1, 1) = '"' THEN json_extract_scalar(user_username, '$') END AS user_username,
        CASE
            WHEN substr(user_language_code, 1, 1) = '"' THEN json_extract_scalar(user_language_code, '$')
        END AS user_language_code,
        CASE WHEN substr(chat_title, 1, 1) = '"' THEN json_extract_scalar(chat_title, '$') END AS chat_title,
        CASE
            WHEN regexp_like(reply_to_message_id, '^-?[0-9]+$') THEN TRY_CAST(reply_to_message_id AS BIGINT)
        END AS reply_to_message_id,
        CASE
            WHEN regexp_like(message_thread_id, '^-?[0-9]+$') THEN TRY_CAST(message_thread_id AS BIGINT)
        END AS message_thread_id,
        CASE
            WHEN regexp_like(edit_date, '^[0-9]+$') AND TRY_CAST(edit_date AS BIGINT) <= {{unix_seconds_max}}
            THEN TRY_CAST(edit_date AS BIGINT)
        END AS edit_date,
        text_entities,
        caption_entities
    FROM field_texts
),
commands AS (
    -- The first `bot_command` entity at offset 0 with a positive length decides (text first, then caption).
    SELECT
        typed.*,
        CASE WHEN text IS NOT NULL THEN element_at(filter(text_entities, entity ->
            json_extract_scalar(entity, '$.type') = 'bot_command'
            AND json_format(json_extract(entity, '$.offset')) = '0'
            AND regexp_like(COALESCE(json_format(json_extract(entity, '$.length')), ''), '^[0-9]+$')
            AND TRY_CAST(json_format(json_extract(entity, '$.length')) AS BIGINT) > 0
        ), 1) END AS text_command_entity,
        CASE WHEN caption IS NOT NULL THEN element_at(filter(caption_entities, entity ->
            json_extract_scalar(entity, '$.type') = 'bot_command'
            AND json_format(json_extract(entity, '$.offset')) = '0'
            AND regexp_like(COALESCE(json_format(json_extract(entity, '$.length')), ''), '^[0-9]+$')
            AND TRY_CAST(json_format(json_extract(entity, '$.length')) AS BIGINT) > 0
        ), 1) END AS caption_command_entity
    FROM typed
),
marked AS (
    -- What the entity marks, clamped to the text, before `@botname`, ASCII letters lowered.
    SELECT
        commands.*,
        translate(
            split_part(
                CASE
                    WHEN text_command_entity IS NOT NULL THEN substr(text, 1, least(
                        length(text), TRY_CAST(json_format(json_extract(text_command_entity, '$.length')) AS BIGINT)
                    ))
                    WHEN caption_command_entity IS NOT NULL THEN substr(caption, 1, least(
                        length(caption), TRY_CAST(json_format(json_extract(caption_command_entity, '$.length')) AS BIGINT)
                    ))
                END,
                '@', 1
            ),
            'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'
        ) AS marked_command
    FROM commands
)
SELECT
    message_id,
    user_id,
    user_is_bot,
    user_first_name,
    chat_id,
    chat_type,
    text,
    sent_at AS "date",
    update_id,
    update_type,
    COALESCE(
        element_at(filter(ARRAY[{{content_types}}], field ->
            COALESCE(json_format(element_at(message_fields, field)), 'null') <> 'null'), 1),
        CASE
            WHEN cardinality(filter(ARRAY[{{service_fields}}], field ->
                COALESCE(json_format(element_at(message_fields, field)), 'null') <> 'null')) > 0
            THEN 'service'
        END,
        'other'
    ) AS message_type,
    caption,
    user_last_name,
    user_username,
    user_language_code,
    chat_title,
    reply_to_message_id,
    message_thread_id,
    edit_date,
    COALESCE(length(marked_command) > 1 AND substr(marked_command, 1, 1) = '/', false) AS is_command,
    CASE WHEN length(marked_command) > 1 AND substr(marked_command, 1, 1) = '/' THEN marked_command END AS command,
    context_date
FROM marked
