-- What do users ask most: the 20 most used bot commands?
-- command: the bot command a new message from a person starts with, as the ETL extracts it (lower-cased,
-- without its @botname suffix, so /Help@SomeBot counts as /help). uses: how many messages; users: how
-- many different users. Ties: by command. Edits and bots are left out.
SELECT
    command,
    count(*) AS uses,
    count(DISTINCT user_id) AS users
FROM telegram
WHERE update_type = 'message'
  AND user_is_bot = false
  AND command IS NOT NULL
GROUP BY command
ORDER BY uses DESC, users DESC, command
LIMIT 20
