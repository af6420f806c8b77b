-- A PostgreSQL role for running AMP that owns nothing and may only add to the audit log.
--
-- The audit log's triggers refuse UPDATE, DELETE and TRUNCATE, but the table's owner could
-- drop them. Run AMP as this role instead, and keep the owner for migrations:
--
--   1. Start AMP once (or after each upgrade) with the owner's URL: it migrates the schema.
--   2. As the owner, run this file, naming the role:
--        psql "$OWNER_URL" -v app_role=amp_app -f scripts/postgres-app-role.sql
--      then give the role a password (ALTER ROLE amp_app PASSWORD '…') if it has none.
--   3. Run AMP with `database.url` naming amp_app. With every migration applied it creates
--      and changes no schema object, so the role needs none of the owner's rights.
--
-- Run it again after an upgrade that adds tables (default privileges cover tables the
-- owner creates later, but not other owners' tables).
\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I LOGIN', :'app_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') \gexec

GRANT USAGE ON SCHEMA public TO :"app_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
-- The audit log: read and append, nothing else.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM :"app_role";
-- Migrations are the owner's: the role only reads which ones ran.
REVOKE INSERT, UPDATE, DELETE ON _sqlx_migrations FROM :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";
