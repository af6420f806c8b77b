-- AMP's stores on PostgreSQL. Times are UTC milliseconds since the epoch (BIGINT), the same
-- representation the SQLite schema uses, so one set of queries serves both databases.

CREATE TABLE users (
    id           UUID PRIMARY KEY,
    email        TEXT NOT NULL,
    display_name TEXT NOT NULL,
    preferences  JSONB NOT NULL,
    created_at   BIGINT NOT NULL,
    disabled     BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX users_email_ci ON users (lower(email));

CREATE TABLE passwords (
    user_id UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hash    TEXT NOT NULL
);

CREATE TABLE identities (
    issuer  TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (issuer, subject)
);

CREATE TABLE api_keys (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

CREATE TABLE device_sessions (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id    UUID NOT NULL,
    device_name  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX device_sessions_user ON device_sessions (user_id, created_at);

CREATE TABLE refresh_tokens (
    hash       TEXT PRIMARY KEY,
    family     UUID NOT NULL,
    session_id UUID NOT NULL,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE conversations (
    id           UUID PRIMARY KEY,
    owner_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id UUID,
    title        TEXT NOT NULL,
    agent_id     UUID,
    model        TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX conversations_owner ON conversations (owner_id, id) WHERE workspace_id IS NULL;
CREATE INDEX conversations_workspace ON conversations (workspace_id, id);

CREATE TABLE messages (
    id              UUID PRIMARY KEY,
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            TEXT NOT NULL,
    author_id       UUID,
    content         TEXT NOT NULL,
    model           TEXT,
    citations       JSONB NOT NULL,
    usage           JSONB,
    created_at      BIGINT NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);

CREATE TABLE files (
    id           UUID PRIMARY KEY,
    owner_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id UUID,
    name         TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    sha256       TEXT,
    status       JSONB NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX files_owner ON files (owner_id, id);
CREATE INDEX files_workspace ON files (workspace_id, id);

CREATE TABLE chunks (
    id          UUID PRIMARY KEY,
    file_id     UUID NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    ordinal     BIGINT NOT NULL,
    text        TEXT NOT NULL,
    page        BIGINT,
    byte_start  BIGINT NOT NULL,
    byte_end    BIGINT NOT NULL,
    token_count BIGINT NOT NULL,
    UNIQUE (file_id, ordinal)
);

CREATE TABLE workspaces (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    context    TEXT,
    created_by UUID NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    seq          BIGSERIAL PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    added_at     BIGINT NOT NULL,
    UNIQUE (workspace_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE agents (
    id                UUID PRIMARY KEY,
    owner_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    instructions      TEXT NOT NULL,
    model             TEXT,
    fallbacks         JSONB NOT NULL,
    temperature       REAL,
    max_tokens        BIGINT,
    files             JSONB NOT NULL,
    workspaces        JSONB NOT NULL,
    data_sources      JSONB NOT NULL,
    visible_workspace UUID,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX agents_owner ON agents (owner_id);
CREATE INDEX agents_workspace ON agents (visible_workspace);

CREATE TABLE audit_log (
    seq          BIGSERIAL PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor_id     UUID,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    workspace_id UUID,
    success      BOOLEAN NOT NULL,
    client_addr  TEXT,
    detail       JSONB NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_workspace ON audit_log (workspace_id, seq);

-- The audit log is append-only for everyone, including code paths that forget.
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
