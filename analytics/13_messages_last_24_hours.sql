-- Right now: how many messages were sent in each local hour of the last 24 hours, in {{timezone}}?
-- Up to the minute: `telegram` includes today's raw updates, so a message counts as soon as it is stored.
-- One row per local hour (local_date, hour_of_day 0..23, wall-clock time in {{timezone}}), oldest first;
-- an hour with no message has no row. The 24 hours end at the query's start: a message counts when it was
-- sent (`date`) less than 24 hours before it, so the first hour shown is partial, and so is the current one.
-- Counted: new messages from people (edits and bots left out); active_users: different senders that hour.
-- On the night clocks go back, the repeated local hour is one row.
WITH recent AS (
    SELECT
        from_unixtime("date") AT TIME ZONE '{{timezone}}' AS sent_at,
        user_id
    FROM telegram
    WHERE update_type = 'message'
      AND user_is_bot = false
      -- Only the days that can hold such a message are read (every zone is within 14 hours of UTC).
      AND context_date >= current_date - INTERVAL '2' DAY
      AND from_unixtime("date") > current_timestamp - INTERVAL '24' HOUR
)
SELECT
    CAST(sent_at AS DATE) AS local_date,
    EXTRACT(hour FROM sent_at) AS hour_of_day,
    count(*) AS message_amount,
    count(DISTINCT user_id) AS active_users
FROM recent
GROUP BY 1, 2
ORDER BY local_date, hour_of_day
