-- AMP's stores on SQLite. Times are UTC milliseconds since the epoch (INTEGER), the same
-- representation the PostgreSQL schema uses, so one set of queries serves both databases.
-- BLOBs are 16-byte BLOBs, JSON is TEXT.

CREATE TABLE users (
    id           BLOB PRIMARY KEY,
    email        TEXT NOT NULL,
    display_name TEXT NOT NULL,
    preferences  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    disabled     INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX users_email_ci ON users (lower(email));

CREATE TABLE passwords (
    user_id BLOB PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hash    TEXT NOT NULL
);

CREATE TABLE identities (
    issuer  TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (issuer, subject)
);

CREATE TABLE api_keys (
    id         BLOB PRIMARY KEY,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

CREATE TABLE device_sessions (
    id           BLOB PRIMARY KEY,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id    BLOB NOT NULL,
    device_name  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX device_sessions_user ON device_sessions (user_id, created_at);

CREATE TABLE refresh_tokens (
    hash       TEXT PRIMARY KEY,
    family     BLOB NOT NULL,
    session_id BLOB NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE conversations (
    id           BLOB PRIMARY KEY,
    owner_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id BLOB,
    title        TEXT NOT NULL,
    agent_id     BLOB,
    model        TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX conversations_owner ON conversations (owner_id, id) WHERE workspace_id IS NULL;
CREATE INDEX conversations_workspace ON conversations (workspace_id, id);

CREATE TABLE messages (
    id              BLOB PRIMARY KEY,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            TEXT NOT NULL,
    author_id       BLOB,
    content         TEXT NOT NULL,
    model           TEXT,
    citations       TEXT NOT NULL,
    usage           TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);

CREATE TABLE files (
    id           BLOB PRIMARY KEY,
    owner_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id BLOB,
    name         TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    size_bytes   INTEGER NOT NULL,
    sha256       TEXT,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX files_owner ON files (owner_id, id);
CREATE INDEX files_workspace ON files (workspace_id, id);

CREATE TABLE chunks (
    id          BLOB PRIMARY KEY,
    file_id     BLOB NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    ordinal     INTEGER NOT NULL,
    text        TEXT NOT NULL,
    page        INTEGER,
    byte_start  INTEGER NOT NULL,
    byte_end    INTEGER NOT NULL,
    token_count INTEGER NOT NULL,
    UNIQUE (file_id, ordinal)
);

CREATE TABLE workspaces (
    id         BLOB PRIMARY KEY,
    name       TEXT NOT NULL,
    context    TEXT,
    created_by BLOB NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL
);

CREATE TABLE memberships (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    added_at     INTEGER NOT NULL,
    UNIQUE (workspace_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE agents (
    id                BLOB PRIMARY KEY,
    owner_id          BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    instructions      TEXT NOT NULL,
    model             TEXT,
    fallbacks         TEXT NOT NULL,
    temperature       REAL,
    max_tokens        INTEGER,
    files             TEXT NOT NULL,
    workspaces        TEXT NOT NULL,
    data_sources      TEXT NOT NULL,
    visible_workspace BLOB,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX agents_owner ON agents (owner_id);
CREATE INDEX agents_workspace ON agents (visible_workspace);

CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor_id     BLOB,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    workspace_id BLOB,
    success      INTEGER NOT NULL,
    client_addr  TEXT,
    detail       TEXT NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_workspace ON audit_log (workspace_id, seq);

-- The audit log is append-only for everyone, including code paths that forget.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
