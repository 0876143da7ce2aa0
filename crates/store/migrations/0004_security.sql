-- Issue 19 finding 15: only clients marked as resource servers (APIs that
-- check tokens on behalf of others) may introspect tokens.
ALTER TABLE auth_clients ADD COLUMN resource_server BIGINT NOT NULL DEFAULT 0;
