-- `telegram` for analysts on a pseudonymized stage: the pseudonymized table's compacted days, and nothing else.
-- Its user ids (and private chats' ids) are keyed hashes and its names null (text too, when the stage drops it),
-- the columns those of `telegram`, so every saved query reads it unchanged. No raw day is added up to the minute:
-- the raw zone holds every identity and name, and analysts may not read it. Today's messages appear once the day
-- is compacted, the morning after.
SELECT {{columns}}
FROM {{database}}.{{table}}
