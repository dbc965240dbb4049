-- How many people join and leave each chat per day, and what is the net change?
-- One row per day (`context_date`, the day the update arrived in {{timezone}}) and chat, newest day first.
-- Read from the raw zone (telegram_updates: every update of the last 31 days; older days are not shown).
-- A join is a change from not a member to a member, a leave the reverse. A member is `creator`,
-- `administrator`, `member`, or `restricted` with `is_member` true; `left`, `kicked` and a restricted
-- non-member are not. Seen in two kinds of update: `chat_member` (old_chat_member -> new_chat_member; a
-- promotion or a restriction of someone who stays is neither), and the service messages in `message`
-- updates (`new_chat_members`: each user listed joined; `left_chat_member`: that user left).
-- joins / leaves: different people who joined / left the chat that day. Telegram often sends both kinds for
-- one change: a person is counted once per day and chat in each direction, however many updates say so.
-- net_change: members at the end of the day minus at its start, per person: +1 when their last change of
-- the day is a join and their first is not a leave, -1 the reverse, else 0 (a leave and a rejoin is 0,
-- a join, leave and rejoin is +1), in the order Telegram numbered the updates (update_id).
-- Bots are left out (the bot itself, and other bots added to the chat), as in every count of people here.
-- What it cannot tell: the member count itself (only changes are seen); changes while the bot was not an
-- administrator with `chat_member` in its allowed_updates (then only the service messages say anything,
-- and not every change makes one); anything before the 31 days.
-- updates: chat_member, message
WITH reported AS (
    -- One row per person an update reports on: the member of a `chat_member` update, each user listed in
    -- `new_chat_members`, the `left_chat_member` (a service message is one of the two at most). The raw zone
    -- is read once: every step below follows from this one.
    SELECT
        context_date,
        update_id,
        update_type,
        json_format(json_extract(payload, '$.chat.id')) AS chat_id,
        CASE
            WHEN update_type = 'chat_member' THEN json_extract(payload, '$.new_chat_member.user')
            ELSE COALESCE(new_member, json_extract(payload, '$.left_chat_member'))
        END AS person,
        new_member IS NOT NULL AS listed_as_new,
        json_extract_scalar(payload, '$.old_chat_member.status') AS old_status,
        json_format(json_extract(payload, '$.old_chat_member.is_member')) AS old_is_member,
        json_extract_scalar(payload, '$.new_chat_member.status') AS new_status,
        json_format(json_extract(payload, '$.new_chat_member.is_member')) AS new_is_member
    FROM telegram_updates
    LEFT JOIN UNNEST(TRY(CAST(json_extract(payload, '$.new_chat_members') AS ARRAY(JSON)))) AS listed (new_member)
        ON true
    WHERE update_type IN ('chat_member', 'message')
),
memberships AS (
    SELECT
        reported.*,
        CASE
            WHEN old_status IN ('creator', 'administrator', 'member') THEN true
            WHEN old_status = 'restricted' THEN old_is_member = 'true'
            WHEN old_status IN ('left', 'kicked') THEN false
        END AS was_member,
        CASE
            WHEN new_status IN ('creator', 'administrator', 'member') THEN true
            WHEN new_status = 'restricted' THEN new_is_member = 'true'
            WHEN new_status IN ('left', 'kicked') THEN false
        END AS is_member
    FROM reported
),
changes AS (
    -- Integer ids only (the JSON text of a whole number); bots out.
    SELECT
        context_date,
        update_id,
        TRY_CAST(chat_id AS BIGINT) AS chat_id,
        TRY_CAST(json_format(json_extract(person, '$.id')) AS BIGINT) AS user_id,
        CASE
            WHEN update_type = 'message' AND listed_as_new THEN 'join'
            WHEN update_type = 'message' THEN 'leave'
            WHEN was_member = false AND is_member = true THEN 'join'
            WHEN was_member = true AND is_member = false THEN 'leave'
        END AS direction
    FROM memberships
    WHERE regexp_like(chat_id, '^-?[0-9]+$')
      AND regexp_like(json_format(json_extract(person, '$.id')), '^-?[0-9]+$')
      AND json_format(json_extract(person, '$.is_bot')) = 'false'
),
ordered AS (
    SELECT
        changes.*,
        row_number() OVER (PARTITION BY context_date, chat_id, user_id ORDER BY update_id) AS nth_change,
        row_number() OVER (PARTITION BY context_date, chat_id, user_id ORDER BY update_id DESC) AS nth_from_last
    FROM changes
    WHERE direction IS NOT NULL
),
per_person AS (
    SELECT
        context_date,
        chat_id,
        user_id,
        max(CASE WHEN direction = 'join' THEN 1 ELSE 0 END) AS joined,
        max(CASE WHEN direction = 'leave' THEN 1 ELSE 0 END) AS left_chat,
        max(CASE WHEN nth_from_last = 1 AND direction = 'join' THEN 1 ELSE 0 END)
            - max(CASE WHEN nth_change = 1 AND direction = 'leave' THEN 1 ELSE 0 END) AS net_change
    FROM ordered
    WHERE chat_id IS NOT NULL AND user_id IS NOT NULL
    GROUP BY context_date, chat_id, user_id
)
SELECT
    context_date,
    chat_id,
    sum(joined) AS joins,
    sum(left_chat) AS leaves,
    sum(net_change) AS net_change
FROM per_person
GROUP BY context_date, chat_id
ORDER BY context_date DESC, chat_id
