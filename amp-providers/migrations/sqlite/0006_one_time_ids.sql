-- Single-use ids with an expiry: SAML requests waiting for their answer, and the ids of
-- assertions already used (the replay cache). Shared by every server process.
CREATE TABLE one_time_ids (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX one_time_ids_expiry ON one_time_ids (expires_at);
