-- Identity: verified emails, account status (pending approval), administrators, the
-- one-time claim of a fresh installation, email-verification tokens, and invitations
-- that take effect only once the invitee accepts.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE users ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE users SET status = 'disabled' WHERE disabled;
ALTER TABLE users DROP COLUMN disabled;
CREATE INDEX users_status ON users (status, id);

-- One row once some account has claimed the installation (the first registration). An
-- installation that already had accounts is claimed by nobody: nobody becomes
-- administrator by registering after an upgrade.
CREATE TABLE installation_claim (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    user_id    UUID,
    claimed_at BIGINT NOT NULL
);
INSERT INTO installation_claim (id, user_id, claimed_at)
    SELECT 1, CAST(NULL AS UUID), 0 WHERE EXISTS (SELECT 1 FROM users);

CREATE TABLE email_tokens (
    hash       TEXT PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX email_tokens_user ON email_tokens (user_id);

CREATE TABLE invitations (
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL,
    invited_by   UUID NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, email)
);
CREATE INDEX invitations_email ON invitations (email);

-- What an API key may do beyond acting for its owner (comma-separated scopes), and the
-- credential (`session:<id>`, `api_key:<id>`) a key or session was minted with.
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN minted_by TEXT;
ALTER TABLE device_sessions ADD COLUMN minted_by TEXT;
