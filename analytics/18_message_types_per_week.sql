-- What do people send each week: how many texts, photos, stickers, voice messages, videos, polls, ...?
-- One row per ISO week (Monday to Sunday) in {{timezone}}, by the day each message arrived (`context_date`),
-- and message type: newest week first, then the most sent type, then by name. week_start is the week's Monday.
-- message_type: the message's kind as the ETL names it: text, photo, sticker, voice, video, video_note,
-- animation (a GIF), audio, document, poll, location, venue, contact, dice, story; `other` for a kind newer
-- than the ETL. A photo with a caption is a photo. messages: how many; share_percent: 100 * messages / all
-- messages of that week, one decimal.
-- Messages as in weekly_active_writers: new messages of people (no edit, no bot, no service message).
-- What it cannot tell: what a photo shows or a voice message says; a kind Telegram did not send the bot.
WITH weekly AS (
    SELECT
        CAST(date_trunc('week', context_date) AS date) AS week_start,
        message_type,
        count(*) AS messages
    FROM telegram
    WHERE update_type = 'message'
      AND user_is_bot = false
      AND user_id IS NOT NULL
      AND message_type <> 'service'
    GROUP BY 1, 2
)
SELECT
    week_start,
    message_type,
    messages,
    round(100 * CAST(messages AS double) / sum(messages) OVER (PARTITION BY week_start), 1) AS share_percent
FROM weekly
ORDER BY week_start DESC, messages DESC, message_type
