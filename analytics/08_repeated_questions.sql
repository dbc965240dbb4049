-- Is the bot helping: how many users ask the same question again within 24 hours, per day?
-- Proxy: someone whose question was answered has no reason to ask it again soon, so a falling
-- repeat_percent suggests the bot (or the group) answers better. Per day (`context_date`, in {{timezone}}):
-- users_asking: users who asked at least one question that day; users_repeating: those of them who asked,
-- that day, a question they had already asked within the 24 hours before (possibly the day before);
-- repeat_percent: 100 * users_repeating / users_asking, one decimal. A question is defined as in
-- top_questions (normalized text or caption ending in `?`), from new messages of people (no edits, no bots).
-- What it cannot tell: whether an answer was right, or came from the bot at all (the bot's own replies
-- never reach its webhook); users who gave up silently look helped; a rephrased question is not seen as a
-- repeat; some repeats are a new need, not a failed answer (a daily "any news?"). Read it as a trend.
WITH questions AS (
    SELECT
        user_id,
        context_date,
        "date" AS asked_at,
        trim(BOTH ' ' FROM regexp_replace(lower(coalesce(text, caption)), '[ \t\n\f\r]+', ' ')) AS question
    FROM telegram
    WHERE update_type = 'message'
      AND user_is_bot = false
),
askings AS (
    SELECT
        user_id,
        context_date,
        asked_at - lag(asked_at) OVER (PARTITION BY user_id, question ORDER BY asked_at) AS seconds_since_asked
    FROM questions
    WHERE question LIKE '%?'
      AND trim(BOTH ' ' FROM replace(question, '?', '')) <> ''
),
daily AS (
    SELECT
        context_date,
        count(DISTINCT user_id) AS users_asking,
        count(DISTINCT CASE WHEN seconds_since_asked <= 86400 THEN user_id END) AS users_repeating
    FROM askings
    GROUP BY context_date
)
SELECT
    context_date,
    users_asking,
    users_repeating,
    round(100 * CAST(users_repeating AS double) / users_asking, 1) AS repeat_percent
FROM daily
ORDER BY context_date DESC
