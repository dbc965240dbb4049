-- One raw day as the enriched table's rows, in the Parquet file's column order and the ETL Lambda's row order:
-- what the Athena compaction engine UNLOADs (raw_rows.sql for that day alone).
SELECT {{columns}}
FROM (
{{raw_rows}}
) AS raw_rows
ORDER BY update_id
