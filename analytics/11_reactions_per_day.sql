-- Which reactions do people add to messages, per day?
-- One row per day (`context_date`, the day the update arrived in {{timezone}}) and reaction, newest day
-- first, then by reactions_added + anonymous_change, most first. Read from the raw zone (telegram_updates:
-- every update of the last 31 days).
-- reaction_type: `emoji`, `custom_emoji` or `paid` (Telegram Stars); reaction: the emoji itself, the custom
-- emoji's id, or the type's name for a reaction with neither.
-- Two sources, never added together:
-- reactions_added / reactions_removed: from `message_reaction`, Telegram's update for messages whose
-- reactions are public (groups): one person's (or an anonymous admin's chat's) reaction list on one message,
-- before and after. A reaction in the new list and not the old one was added, the reverse removed; a
-- change from one emoji to another is one of each. Each change counts: a reaction taken back and set again
-- is added twice. users_adding: different people (or chats) who added this reaction that day.
-- anonymous_change: from `message_reaction_count`, Telegram's update for messages whose reactions are
-- anonymous (channels): the message's totals per reaction. The latest totals of each message per day
-- (by update_id), minus its latest totals of the last earlier day it had any (none before: zero); the
-- net change, as anonymous totals cannot tell an addition from a removal.
-- What it cannot tell: reactions set by bots (Telegram does not send them); reactions while the bot was not
-- an administrator listing these types in allowed_updates; on the first day in the 31 days a message's
-- anonymous totals appear, they include any reactions it got before.
-- updates: message_reaction, message_reaction_count
WITH reaction_updates AS (
    -- The raw zone is read once: every step below follows from this one.
    SELECT
        context_date,
        update_id,
        update_type,
        json_format(json_extract(payload, '$.chat.id')) AS chat_id,
        json_format(json_extract(payload, '$.message_id')) AS message_id,
        json_format(json_extract(payload, '$.user.id')) AS user_id,
        json_format(json_extract(payload, '$.actor_chat.id')) AS actor_chat_id,
        COALESCE(TRY(CAST(json_extract(payload, '$.old_reaction') AS ARRAY(JSON))), CAST(ARRAY[] AS ARRAY(JSON)))
            AS old_reaction,
        COALESCE(TRY(CAST(json_extract(payload, '$.new_reaction') AS ARRAY(JSON))), CAST(ARRAY[] AS ARRAY(JSON)))
            AS new_reaction,
        TRY(CAST(json_extract(payload, '$.reactions') AS ARRAY(JSON))) AS reaction_counts
    FROM telegram_updates
    WHERE update_type IN ('message_reaction', 'message_reaction_count')
),
latest AS (
    -- For anonymous totals: the latest of each message per day.
    SELECT
        reaction_updates.*,
        row_number() OVER (
            PARTITION BY update_type, chat_id, message_id, context_date ORDER BY update_id DESC
        ) AS recency
    FROM reaction_updates
),
sequenced AS (
    -- ... and the next day the message has totals.
    SELECT
        latest.*,
        lead(context_date) OVER (PARTITION BY update_type, chat_id, message_id ORDER BY context_date) AS next_day
    FROM latest
    WHERE update_type = 'message_reaction'
       OR (recency = 1 AND regexp_like(chat_id, '^-?[0-9]+$') AND regexp_like(message_id, '^-?[0-9]+$'))
),
items AS (
    -- One row per reaction listed: a person's old list then new list (the position tells which), or the
    -- message's totals.
    SELECT
        sequenced.*,
        CASE WHEN update_type = 'message_reaction' THEN listed_item ELSE json_extract(listed_item, '$.type') END
            AS reaction_object,
        list_position > cardinality(old_reaction) AS in_new_list,
        json_format(json_extract(listed_item, '$.total_count')) AS total_count
    FROM sequenced
    CROSS JOIN UNNEST(
        CASE WHEN update_type = 'message_reaction' THEN concat(old_reaction, new_reaction) ELSE reaction_counts END
    ) WITH ORDINALITY AS listed (listed_item, list_position)
),
named AS (
    SELECT
        items.*,
        CASE
            WHEN regexp_like(user_id, '^-?[0-9]+$') THEN TRY_CAST(user_id AS BIGINT)
            WHEN regexp_like(actor_chat_id, '^-?[0-9]+$') THEN TRY_CAST(actor_chat_id AS BIGINT)
        END AS actor_id,
        json_extract_scalar(reaction_object, '$.type') AS reaction_type,
        CASE json_extract_scalar(reaction_object, '$.type')
            WHEN 'emoji' THEN json_extract_scalar(reaction_object, '$.emoji')
            WHEN 'custom_emoji' THEN json_extract_scalar(reaction_object, '$.custom_emoji_id')
            ELSE json_extract_scalar(reaction_object, '$.type')
        END AS reaction
    FROM items
),
dated AS (
    -- A person's change counts on its day. A day's anonymous totals count up on that day and down on the
    -- message's next day with totals.
    SELECT
        CASE WHEN sign = 1 THEN context_date ELSE next_day END AS counted_on,
        named.*,
        sign
    FROM named
    CROSS JOIN (VALUES 1, -1) AS signs (sign)
    WHERE reaction_type IS NOT NULL
      AND reaction IS NOT NULL
      AND (
          (update_type = 'message_reaction' AND sign = 1)
          OR (update_type = 'message_reaction_count' AND regexp_like(total_count, '^[0-9]+$')
              AND (sign = 1 OR next_day IS NOT NULL))
      )
),
changes AS (
    -- Per update and reaction: only in the new list is added, only in the old list is removed.
    SELECT
        counted_on,
        reaction_type,
        reaction,
        actor_id,
        CASE WHEN update_type = 'message_reaction' AND bool_and(in_new_list) THEN 1 ELSE 0 END AS added,
        CASE WHEN update_type = 'message_reaction' AND NOT bool_or(in_new_list) THEN 1 ELSE 0 END AS removed,
        COALESCE(
            sum(CASE WHEN update_type = 'message_reaction_count' THEN sign * TRY_CAST(total_count AS BIGINT) END), 0
        ) AS anonymous_change
    FROM dated
    GROUP BY counted_on, update_id, update_type, actor_id, reaction_type, reaction, sign
)
SELECT
    counted_on AS context_date,
    reaction_type,
    reaction,
    sum(added) AS reactions_added,
    sum(removed) AS reactions_removed,
    count(DISTINCT CASE WHEN added = 1 THEN actor_id END) AS users_adding,
    sum(anonymous_change) AS anonymous_change
FROM changes
GROUP BY counted_on, reaction_type, reaction
HAVING sum(added) > 0 OR sum(removed) > 0 OR sum(anonymous_change) <> 0
ORDER BY context_date DESC, sum(added) + sum(anonymous_change) DESC, reaction_type, reaction
