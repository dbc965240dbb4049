-- How sticky is the community: how many people write each month, and how many of them on an average day?
-- One row per calendar month in {{timezone}}, by the day each message arrived (`context_date`), newest first;
-- month_start is the month's first day. A month in which nobody wrote has no row.
-- monthly_active_writers: different people who wrote that month. average_daily_writers: the people who wrote
-- on each day of the month, averaged over its days, one decimal; a day nobody wrote on counts as 0. Only the
-- days from the first to the last day anyone wrote (in what the query reads) are averaged, so a first or a
-- current month is averaged over its days so far, not over the whole month. days_averaged: how many.
-- stickiness_percent: 100 * average_daily_writers / monthly_active_writers (daily over monthly active), one
-- decimal: 100 when every writer of the month wrote on every day, about 3 when each wrote on one day only.
-- Writers as in weekly_active_writers: people who sent a new message (no edit, no bot, no service message).
-- What it cannot tell: people who only read; a month read in part (the first, the current, or one at the edge
-- of the report's range) has fewer monthly_active_writers than the whole month will have, so its stickiness
-- reads higher.
WITH writer_days AS (
    -- Each person's days of writing: the lake is read once, here.
    SELECT DISTINCT
        user_id,
        context_date
    FROM telegram
    WHERE update_type = 'message'
      AND user_is_bot = false
      AND user_id IS NOT NULL
      AND message_type <> 'service'
),
months AS (
    SELECT
        CAST(date_trunc('month', context_date) AS date) AS month_start,
        count(DISTINCT user_id) AS monthly_active_writers,
        count(*) AS writer_days,  -- each day's writers, added up over the month
        min(min(context_date)) OVER () AS first_day,
        max(max(context_date)) OVER () AS last_day
    FROM writer_days
    GROUP BY 1
),
averaged AS (
    SELECT
        months.*,
        date_diff(
            'day',
            greatest(month_start, first_day),
            least(date_add('day', -1, date_add('month', 1, month_start)), last_day)
        ) + 1 AS days_averaged
    FROM months
)
SELECT
    month_start,
    monthly_active_writers,
    round(CAST(writer_days AS double) / days_averaged, 1) AS average_daily_writers,
    days_averaged,
    round(100 * CAST(writer_days AS double) / (days_averaged * monthly_active_writers), 1) AS stickiness_percent
FROM averaged
ORDER BY month_start DESC
