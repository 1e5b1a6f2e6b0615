-- The platform tables of this schema (schema_migrations, outbox, processed_events) are created by
-- libs.db.migrate.ensure_platform_tables before any file here runs; this file marks the baseline.
-- Service tables start at 0001_*.sql.
SELECT 1;
