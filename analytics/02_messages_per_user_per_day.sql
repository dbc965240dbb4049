-- How many messages does each user send per day?
-- One row per user and day (`context_date`, in {{timezone}}), newest day first, then the busiest user.
-- Counted as in daily_message_count: new messages from people, edits and bots left out.
-- The original grouped by first name too, so a user who renamed during a day was split into two rows;
-- here the user is the id and the name shown is the one on their latest message that day.
SELECT
    user_id,
    max_by(user_first_name, update_id) AS user_first_name,
    context_date,
    count(*) AS message_amount
FROM telegram
WHERE update_type = 'message'
  AND user_is_bot = false
GROUP BY user_id, context_date
ORDER BY context_date DESC, message_amount DESC, user_id
