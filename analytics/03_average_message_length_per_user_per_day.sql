-- How long are each user's messages on average, per day?
-- average_message_length: the mean length in characters (Unicode code points) of the text of the user's
-- new messages that day (`context_date`, in {{timezone}}), rounded half up to a whole number (Athena's
-- cast of a double to an integer).
-- Only messages that have text are averaged: media without text, and captions, are not message text. A
-- user with no text message that day has no row (the original listed them with an empty average). The
-- length is that of the text as first sent (edits are left out), and bots are left out.
SELECT
    user_id,
    max_by(user_first_name, update_id) AS user_first_name,
    context_date,
    CAST(avg(length(text)) AS integer) AS average_message_length
FROM telegram
WHERE update_type = 'message'
  AND user_is_bot = false
  AND text IS NOT NULL
GROUP BY user_id, context_date
ORDER BY context_date DESC, user_id
