-- SQLite has no TRUNCATE (DELETE without WHERE is refused by the row trigger of 0001); this
-- keeps the migration numbers of both dialects in step.
SELECT 1;
