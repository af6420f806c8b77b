-- A key's own daily token budget, below the per-key quota every key has.
ALTER TABLE api_keys ADD COLUMN daily_token_budget BIGINT;
