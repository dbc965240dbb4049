-- Which messages got the most reactions: the 20 most reacted?
-- Reactions standing on each message now, as the last 31 days of the raw zone show them (telegram_updates),
-- most first; ties by chat and message id. Two sources, never added together:
-- from `message_reaction` (public reactions, groups): each person's (or anonymous admin's chat's) latest
-- reaction list on the message (by update_id), all added up; reacting_users: how many of them have at least
-- one reaction on it. From `message_reaction_count` (anonymous reactions, channels): the message's latest
-- totals; reacting_users is then unknown (null). A message with anonymous totals is counted by them alone,
-- as they count every reaction on it.
-- text: the message's text (or caption), as last edited, when the message is in the lake (`telegram`:
-- any day, up to the minute, so the ids and texts of every compacted day are read); null for a message the
-- bot never received (sent before it joined, or of a type outside allowed_updates) or without text.
-- What it cannot tell: reactions set by bots (Telegram does not send them), and reactions whose last
-- change is older than the 31 days (a message reacted to only before then is missing, or counted short).
-- updates: message_reaction, message_reaction_count
WITH reaction_updates AS (
    -- The raw zone is read once: every step below follows from this one.
    SELECT
        update_id,
        update_type,
        json_format(json_extract(payload, '$.chat.id')) AS chat_id,
        json_format(json_extract(payload, '$.message_id')) AS message_id,
        CASE
            WHEN regexp_like(json_format(json_extract(payload, '$.user.id')), '^-?[0-9]+$')
                THEN TRY_CAST(json_format(json_extract(payload, '$.user.id')) AS BIGINT)
            WHEN regexp_like(json_format(json_extract(payload, '$.actor_chat.id')), '^-?[0-9]+$')
                THEN TRY_CAST(json_format(json_extract(payload, '$.actor_chat.id')) AS BIGINT)
        END AS actor_id,
        TRY(CAST(json_extract(payload, '$.new_reaction') AS ARRAY(JSON))) AS new_reaction,
        TRY(CAST(json_extract(payload, '$.reactions') AS ARRAY(JSON))) AS reaction_counts
    FROM telegram_updates
    WHERE update_type IN ('message_reaction', 'message_reaction_count')
),
latest AS (
    -- Each person's latest reaction list on each message; each message's latest anonymous totals.
    SELECT
        reaction_updates.*,
        row_number() OVER (
            PARTITION BY update_type, chat_id, message_id, actor_id ORDER BY update_id DESC
        ) AS recency
    FROM reaction_updates
    WHERE regexp_like(chat_id, '^-?[0-9]+$')
      AND regexp_like(message_id, '^-?[0-9]+$')
      AND (update_type = 'message_reaction_count' OR actor_id IS NOT NULL)
),
standing AS (
    SELECT
        latest.*,
        json_format(json_extract(reaction_count, '$.total_count')) AS total_count
    FROM latest
    LEFT JOIN UNNEST(CASE WHEN update_type = 'message_reaction_count' THEN reaction_counts END)
        AS counted (reaction_count) ON true
    WHERE recency = 1
),
reacted AS (
    SELECT
        TRY_CAST(chat_id AS BIGINT) AS chat_id,
        TRY_CAST(message_id AS BIGINT) AS message_id,
        sum(CASE WHEN regexp_like(total_count, '^[0-9]+$') THEN TRY_CAST(total_count AS BIGINT) END)
            AS anonymous_reactions,
        sum(CASE WHEN update_type = 'message_reaction' THEN cardinality(new_reaction) END) AS people_reactions,
        count(CASE WHEN update_type = 'message_reaction' AND cardinality(new_reaction) > 0 THEN actor_id END)
            AS reacting_users
    FROM standing
    GROUP BY chat_id, message_id
),
texts AS (
    -- Each message's latest version in the lake.
    SELECT
        chat_id,
        message_id,
        COALESCE(text, caption) AS text,
        row_number() OVER (PARTITION BY chat_id, message_id ORDER BY update_id DESC) AS recency
    FROM telegram
    WHERE chat_id IS NOT NULL
      AND message_id IS NOT NULL
)
SELECT
    reacted.chat_id,
    reacted.message_id,
    COALESCE(reacted.anonymous_reactions, reacted.people_reactions) AS total_reactions,
    CASE WHEN reacted.anonymous_reactions IS NULL THEN reacted.reacting_users END AS reacting_users,
    texts.text
FROM reacted
LEFT JOIN texts
    ON texts.chat_id = reacted.chat_id
    AND texts.message_id = reacted.message_id
    AND texts.recency = 1
WHERE COALESCE(reacted.anonymous_reactions, reacted.people_reactions) > 0
ORDER BY total_reactions DESC, reacted.chat_id, reacted.message_id
LIMIT 20
