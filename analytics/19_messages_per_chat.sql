-- How do the chats compare: how many messages and writers does each chat have?
-- One row per chat the lake holds (the stage's allowed_chat_ids, and a group they were upgraded to), over
-- every day the query reads; most messages first, then most channel posts, then by chat id.
-- chat_title: the title on the chat's latest update that has one, so a renamed chat shows its new name (null
-- for a private chat, which has none); chat_type: group, supergroup, channel or private.
-- messages: new messages of people; writers: the different people who wrote them; active_days: the days
-- (`context_date`, in {{timezone}}) with at least one. As in weekly_active_writers: no edit, no bot, no
-- service message. channel_posts: posts in a channel, which have no sender and so are no messages of people.
-- What it cannot tell: how many members a chat has, or how many read; chats outside the allowlist (never
-- stored).
SELECT
    chat_id,
    max_by(chat_title, update_id) FILTER (WHERE chat_title IS NOT NULL) AS chat_title,
    max_by(chat_type, update_id) FILTER (WHERE chat_type IS NOT NULL) AS chat_type,
    count(CASE WHEN is_written THEN 1 END) AS messages,
    count(DISTINCT CASE WHEN is_written THEN user_id END) AS writers,
    count(DISTINCT CASE WHEN is_written THEN context_date END) AS active_days,
    count(CASE WHEN update_type = 'channel_post' THEN 1 END) AS channel_posts
FROM (
    SELECT
        telegram.*,
        COALESCE(
            update_type = 'message' AND user_is_bot = false AND user_id IS NOT NULL AND message_type <> 'service',
            false
        ) AS is_written
    FROM telegram
    WHERE chat_id IS NOT NULL
) AS chat_updates
GROUP BY chat_id
HAVING count(CASE WHEN is_written OR update_type = 'channel_post' THEN 1 END) > 0
ORDER BY messages DESC, channel_posts DESC, chat_id
