-- `telegram` up to the minute: what every saved query reads. The compacted days (the `telegram` table), plus the
-- raw days of the last {{raw_window_days}} days that are not compacted yet (today, and a day whose ETL run
-- failed), flattened exactly as the ETL will compact them. A day present in both zones is read once, from the
-- compacted zone. The window is a constant of the query (current_date), so Athena prunes the raw partitions
-- while planning: a query over years of history reads raw JSON for those few days only.
SELECT {{columns}}
FROM {{database}}.telegram
UNION ALL
SELECT {{columns}}
FROM (
{{raw_rows}}
) AS raw_rows
WHERE raw_rows.context_date NOT IN (
    SELECT DISTINCT context_date
    FROM {{database}}.telegram
    WHERE context_date >= {{window_start}}
)
