-- What do users ask most: the 20 most frequent questions?
-- A question is a new message from a person whose text (or, for media, caption) ends in `?` once
-- normalized: lower-cased, every run of spaces, tabs and line breaks made one space, trimmed of spaces.
-- A bare `?` is not a question. The characters are spelled out because `\s` and a plain trim() mean other
-- sets in Athena (Trino: also vertical tab and Unicode spaces) and DuckDB; a non-breaking space is text.
-- Messages that normalize to the same text are the same question; rephrasings are not recognized as such.
-- times_asked: how many messages asked it; users_asking: how many different users. Ties: by text.
-- The same normalization defines a question in repeated_questions: keep the two in step.
WITH messages AS (
    SELECT
        user_id,
        trim(BOTH ' ' FROM regexp_replace(lower(coalesce(text, caption)), '[ \t\n\f\r]+', ' ')) AS question
    FROM telegram
    WHERE update_type = 'message'
      AND user_is_bot = false
)
SELECT
    question,
    count(*) AS times_asked,
    count(DISTINCT user_id) AS users_asking
FROM messages
WHERE question LIKE '%?'
  AND trim(BOTH ' ' FROM replace(question, '?', '')) <> ''
GROUP BY question
ORDER BY times_asked DESC, users_asking DESC, question
LIMIT 20
