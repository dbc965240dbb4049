-- Raw updates, one row per stored update as the ETL Lambda counts them (raw_objects.sql: deduplicated, checked),
-- each with its type and that field's value, as JSON: every update type, not only messages.
-- analytics/__init__.py fills in the raw objects of the days read.
SELECT context_date, update_id, update_type, payload
FROM (
{{raw_objects}}
) AS raw_objects
WHERE outcome = 'update'
