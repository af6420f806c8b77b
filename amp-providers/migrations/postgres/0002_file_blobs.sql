-- Where a file's original bytes live in the blob store, and the lookups that uploads
-- (same content twice) and the crash sweep (files left mid-processing) make.
ALTER TABLE files ADD COLUMN blob_key TEXT;
ALTER TABLE files ADD COLUMN job_id UUID;
CREATE INDEX files_owner_sha256 ON files (owner_id, sha256);
CREATE INDEX files_unfinished ON files (updated_at)
    WHERE (status ->> 'state') NOT IN ('ready', 'failed');
