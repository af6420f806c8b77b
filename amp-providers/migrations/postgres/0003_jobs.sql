-- The durable job queue (file ingestion, data-source sync). Jobs are claimed in enqueue
-- order, `seq`, which the database assigns, so the clocks of several processes cannot
-- reorder them. A claim increments `attempts`, the fencing token a worker proves its lease
-- with. Times are UTC milliseconds like every other table. `owner_id` names the person the
-- work is for, if anyone, without a foreign key: a job's record stays readable after its
-- owner is gone.

CREATE TABLE jobs (
    seq              BIGSERIAL PRIMARY KEY,
    id               UUID NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    payload          JSONB NOT NULL,
    owner_id         UUID,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    max_attempts     BIGINT NOT NULL,
    last_error       TEXT,
    run_after        BIGINT NOT NULL,
    lease_expires_at BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
-- Claims look for queued jobs that are due and running ones whose lease ran out.
CREATE INDEX jobs_claim ON jobs (state, kind, run_after);
-- Listings: one kind newest first, all of it or one person's.
CREATE INDEX jobs_kind ON jobs (kind, seq);
CREATE INDEX jobs_owner ON jobs (kind, owner_id, seq);
