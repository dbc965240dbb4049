-- How many people write each week, and how many of them are new?
-- One row per ISO week (Monday to Sunday) in {{timezone}}, by the day each message arrived (`context_date`),
-- newest week first; week_start is the week's Monday. A week in which nobody wrote has no row.
-- active_writers: different people who wrote that week (weekly active writers); new_writers: those of them
-- whose first message in what the query reads is in that week; messages: the messages they wrote.
-- A writer is a person who sent a new message (`update_type = 'message'`, with a sender): not an edit, not a
-- bot or someone posting anonymously as the group or a channel (`user_is_bot = false`), and not a service
-- message (`message_type = 'service'`: a join, a pin, a new title is something that happened, not writing).
-- What it cannot tell: people who only read (Telegram tells a bot nothing about them); who wrote before the
-- first day read (the lake's first day, or the report's): in the first week everyone is a new writer. The
-- first and the current week may be partial.
WITH writer_weeks AS (
    -- Each person's weeks of writing: the lake is read once, here.
    SELECT
        user_id,
        CAST(date_trunc('week', context_date) AS date) AS week_start,
        count(*) AS messages
    FROM telegram
    WHERE update_type = 'message'
      AND user_is_bot = false
      AND user_id IS NOT NULL
      AND message_type <> 'service'
    GROUP BY 1, 2
),
with_first_week AS (
    SELECT
        writer_weeks.*,
        min(week_start) OVER (PARTITION BY user_id) AS first_week
    FROM writer_weeks
)
SELECT
    week_start,
    count(*) AS active_writers,
    count(CASE WHEN week_start = first_week THEN 1 END) AS new_writers,
    sum(messages) AS messages
FROM with_first_week
GROUP BY week_start
ORDER BY week_start DESC
