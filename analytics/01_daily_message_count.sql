-- How many messages do users send per day?
-- One row per day, newest first (the original design's query, corrected). The day is `context_date`, the
-- day the message arrived in the stage's time zone ({{timezone}}).
-- Counted: new messages from people, whatever their kind (text, photo, sticker, ...).
-- `update_type = 'message'`: an edit arrives as a separate `edited_message` row and is not a second message;
-- channel posts have no sender. `user_is_bot = false`: bots, and people posting anonymously as the group
-- or as a channel (Telegram sends those under a bot account), are left out.
SELECT
    context_date,
    count(*) AS message_amount
FROM telegram
WHERE update_type = 'message'
  AND user_is_bot = false
GROUP BY context_date
ORDER BY context_date DESC
