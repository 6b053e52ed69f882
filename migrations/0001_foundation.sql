-- Foundation: settings, principals with their AccessKeys, portfolios.
-- Portable SQL: the same text runs on SQLite and PostgreSQL (BIGINT times in ms since the epoch,
-- BIGINT 0/1 flags, TEXT everything else).
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE principals (
    principal_id TEXT PRIMARY KEY,
    principal_type TEXT NOT NULL,
    name TEXT NOT NULL,
    is_admin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX principals_type_name ON principals (principal_type, name);

CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL REFERENCES principals (principal_id) ON DELETE CASCADE,
    secret_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX access_keys_principal ON access_keys (principal_id);

CREATE TABLE portfolios (
    portfolio_id TEXT PRIMARY KEY,
    portfolio_name TEXT NOT NULL,
    provider_name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX portfolios_created ON portfolios (created_at, portfolio_id);
