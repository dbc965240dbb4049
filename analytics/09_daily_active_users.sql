-- How many users are active per day?
-- active_users: different people who sent or edited at least one message that day (`context_date`, the
-- day it arrived in {{timezone}}). Unlike the message counts, an edit counts here: editing is activity.
-- Bots, and people posting anonymously as the group or a channel, are left out.
SELECT
    context_date,
    count(DISTINCT user_id) AS active_users
FROM telegram
WHERE update_type IN ('message', 'edited_message')
  AND user_is_bot = false
GROUP BY context_date
ORDER BY context_date DESC
