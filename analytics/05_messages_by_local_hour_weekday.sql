-- When do users interact most: how many messages per hour of day and weekday, in {{timezone}}?
-- Local wall-clock time in the stage's time zone, daylight saving time included (unlike
-- messages_per_hour_weekday_weeknum, which is UTC), by the time each message was sent (`date`).
-- weekday: 1 = Monday ... 7 = Sunday; hour_of_day: 0..23. Busiest first; an hour with no message has no row.
-- Counted: new messages from people (edits and bots left out).
WITH messages AS (
    SELECT from_unixtime("date") AT TIME ZONE '{{timezone}}' AS sent_at
    FROM telegram
    WHERE update_type = 'message'
      AND user_is_bot = false
)
SELECT
    EXTRACT(dow FROM sent_at) AS weekday,
    EXTRACT(hour FROM sent_at) AS hour_of_day,
    count(*) AS message_amount
FROM messages
GROUP BY 1, 2
ORDER BY message_amount DESC, weekday, hour_of_day
