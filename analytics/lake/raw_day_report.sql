-- What compacting one raw day does with its copies of updates, as the ETL Lambda reports it: per outcome (update,
-- duplicate, rejected) and whether the update becomes a row, how many rows of raw_objects.sql and how many copies
-- they stand for; each rejected object (and reason) on a row of its own; and one total row (outcome NULL) counting
-- the raw objects the day's copies come from. One pass over the raw table.
SELECT
    outcome,
    carries_message,
    rejected_path,
    max(reason) AS reason,
    count(*) AS copy_rows,
    COALESCE(sum(copies), 0) AS copies,
    count(DISTINCT CASE WHEN reason IS DISTINCT FROM {{key_reject_reason}} THEN path END) AS objects
FROM (
    SELECT raw_objects.*, CASE WHEN outcome = 'rejected' THEN path END AS rejected_path
    FROM (
{{raw_objects}}
    ) AS raw_objects
) AS judged
GROUP BY GROUPING SETS ((outcome, carries_message, rejected_path), ())
