-- TRUNCATE skips row triggers: refuse it with a statement trigger, so the audit log cannot
-- be emptied by the application's role either.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
