-- How many messages are sent per hour, weekday and week number (in UTC, as in the original design)?
-- Hours, weekdays and weeks are UTC, not the stage's time zone, so that this answer stays comparable with
-- the original design's; for the users' local hours use messages_by_local_hour_weekday.
-- parsed_date_hour: 0..23; parsed_date_weekday: 1 = Monday ... 7 = Sunday; parsed_date_weeknum: ISO week
-- 1..53; parsed_date_weekyear (added): the ISO year that week belongs to, so that week 1 of two years is
-- not added up (2025-12-29 is in week 1 of 2026).
-- Counted: new messages from people (edits and bots left out), by the time they were sent (`date`).
WITH messages AS (
    SELECT from_unixtime("date") AS sent_at
    FROM telegram
    WHERE update_type = 'message'
      AND user_is_bot = false
)
SELECT
    EXTRACT(hour FROM sent_at) AS parsed_date_hour,
    EXTRACT(dow FROM sent_at) AS parsed_date_weekday,
    EXTRACT(week FROM sent_at) AS parsed_date_weeknum,
    EXTRACT(year_of_week FROM sent_at) AS parsed_date_weekyear,
    count(*) AS message_amount
FROM messages
GROUP BY 1, 2, 3, 4
ORDER BY parsed_date_weekyear, parsed_date_weeknum, parsed_date_weekday, parsed_date_hour
