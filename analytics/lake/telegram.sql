-- `telegram` up to the minute: what every saved query reads. The compacted days (the `telegram` table), plus the
-- raw days of the last {{raw_window_days}} days (the stage's `raw_window_days`) that are not compacted yet (today,
-- and days whose ETL run failed or is late), flattened exactly as the ETL will compact them. A day present in both
-- zones is read once, from the compacted zone.
-- Each partition of `telegram` is read by one scan only, so a day compacted while the query runs is counted once,
-- never twice and never not at all: the days before the window in one branch; in the other, the window's
-- compacted and raw rows together, where a day's raw rows are kept only when it has no compacted row.
-- The window is a constant of the query (current_date), so Athena prunes the raw partitions while planning: a
-- query over years of history reads raw JSON for those few days only.
SELECT {{columns}}
FROM {{database}}.telegram
WHERE context_date < {{window_start}}
UNION ALL
SELECT {{columns}}
FROM (
    SELECT recent.*, bool_or(compacted) OVER (PARTITION BY context_date) AS day_is_compacted
    FROM (
        SELECT {{columns}}, true AS compacted
        FROM {{database}}.telegram
        WHERE context_date >= {{window_start}}
        UNION ALL
        SELECT {{columns}}, false AS compacted
        FROM (
{{raw_rows}}
        ) AS raw_rows
    ) AS recent
) AS recent_days
WHERE compacted = day_is_compacted
