-- Keyword search over passages (PgKeywordIndex): each passage's English tsvector, with the
-- columns its access filter reads. The passage text itself stays in `chunks`.
CREATE TABLE keyword_passages (
    chunk_id UUID PRIMARY KEY,
    file_id UUID NOT NULL,
    owner_id UUID NOT NULL,
    workspace_id UUID,
    terms TSVECTOR NOT NULL
);
CREATE INDEX keyword_passages_terms ON keyword_passages USING gin (terms);
CREATE INDEX keyword_passages_file_id ON keyword_passages (file_id);
CREATE INDEX keyword_passages_owner_id ON keyword_passages (owner_id);
CREATE INDEX keyword_passages_workspace_id ON keyword_passages (workspace_id);
