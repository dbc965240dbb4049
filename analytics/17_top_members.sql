-- Who writes most: the 20 most active members?
-- Over every day the query reads: all of them as a saved query, the report's range in the report.
-- messages: the new messages they wrote; active_days: the different days they wrote on (`context_date`, the
-- day a message arrived in {{timezone}}); first_day and last_day: the first and the last of them. Most
-- messages first; ties by more active days, then by user id.
-- member_name (first and last name) and username: as on their latest message; both null when the stage's
-- `show_member_names` setting is false, and the answer then names members by user_id only.
-- Writers as in weekly_active_writers: people who sent a new message (no edit, no bot, no service message).
-- What it cannot tell: who reads most; messages deleted afterwards still count; one person with two accounts
-- is two members.
SELECT
    user_id,
    CASE WHEN {{show_member_names}} THEN
        max_by(
            CASE WHEN user_last_name IS NULL THEN user_first_name ELSE concat(user_first_name, ' ', user_last_name) END,
            update_id
        )
    END AS member_name,
    CASE WHEN {{show_member_names}} THEN max_by(user_username, update_id) END AS username,
    count(*) AS messages,
    count(DISTINCT context_date) AS active_days,
    min(context_date) AS first_day,
    max(context_date) AS last_day
FROM telegram
WHERE update_type = 'message'
  AND user_is_bot = false
  AND user_id IS NOT NULL
  AND message_type <> 'service'
GROUP BY user_id
ORDER BY messages DESC, active_days DESC, user_id
LIMIT 20
