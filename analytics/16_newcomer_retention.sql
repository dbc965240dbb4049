-- Do newcomers stay: of the people who first wrote in a week, how many write again in each later week?
-- One row per cohort and week. cohort_week: the ISO week (Monday to Sunday, in {{timezone}}, by the day each
-- message arrived) of a writer's first message in what the query reads, given by its Monday; weeks_later: 0
-- for that week, 1 for the next, and so on up to the last week anyone wrote in. cohort_writers: the people
-- of the cohort; writers: how many of them wrote in that week (all of them at 0); retained_percent: 100 *
-- writers / cohort_writers, one decimal. Oldest cohort first, then by weeks_later: a cohort's rows show how it
-- fades, one weeks_later across the cohorts whether newer ones stay better. A week in which nobody of the
-- cohort wrote is there with 0; a cohort's row for a week that has not come yet is not.
-- Writers as in weekly_active_writers: people who sent a new message (no edit, no bot, no service message).
-- What it cannot tell: who wrote before the first day read (the lake's first day, or the report's): they are
-- all in the first week's cohort, which is everyone active then rather than newcomers; people who joined and
-- only read (member_changes_per_day counts joins); whether someone who stopped writing left the chat.
WITH writer_weeks AS (
    -- Each person's weeks of writing: the lake is read once, here.
    SELECT DISTINCT
        user_id,
        CAST(date_trunc('week', context_date) AS date) AS week_start
    FROM telegram
    WHERE update_type = 'message'
      AND user_is_bot = false
      AND user_id IS NOT NULL
      AND message_type <> 'service'
),
writers AS (
    SELECT
        user_id,
        min(week_start) AS cohort_week,
        array_agg(week_start) AS weeks_written,
        max(max(week_start)) OVER () AS last_week
    FROM writer_weeks
    GROUP BY user_id
),
cohorts AS (
    -- Every writer once for each week from their first to the last: whether they wrote in it.
    SELECT
        cohort_week,
        weeks_later,
        count(*) AS cohort_writers,
        count(CASE WHEN contains(weeks_written, date_add('day', 7 * weeks_later, cohort_week)) THEN 1 END) AS writers
    FROM writers
    CROSS JOIN UNNEST(sequence(0, date_diff('day', cohort_week, last_week) / 7)) AS later (weeks_later)
    GROUP BY cohort_week, weeks_later
)
SELECT
    cohort_week,
    weeks_later,
    cohort_writers,
    writers,
    round(100 * CAST(writers AS double) / cohort_writers, 1) AS retained_percent
FROM cohorts
ORDER BY cohort_week, weeks_later
