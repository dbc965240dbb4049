-- What compacting one raw day does with its objects, as the ETL Lambda reports it: per outcome (update, duplicate,
-- rejected) and whether the update becomes a row, how many objects; and each rejected object, with its reason.
-- One pass over the raw table: the counts come grouped, the rejects one row each.
SELECT
    outcome,
    carries_message,
    CASE WHEN outcome = 'rejected' THEN path END AS rejected_path,
    max(reason) AS reason,
    count(*) AS objects
FROM (
{{raw_objects}}
) AS raw_objects
GROUP BY outcome, carries_message, CASE WHEN outcome = 'rejected' THEN path END
