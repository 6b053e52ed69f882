-- SQLite only (PostgreSQL: migration 0014). `auth_generation` counts every change to what an
-- authentication or a grant check reads: principals, AccessKeys, role memberships, portfolio
-- grants. The server keeps those answers in memory (store::auth_cache) and reads this one row on
-- each lookup; a change made anywhere (another node, the `users` and `roles` commands) moves the
-- count and the cache starts over. Triggers, not the code that writes, so no writer can forget.
CREATE TABLE auth_generation (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO auth_generation (id, generation) VALUES (1, 0);
-- One trigger per table and event (SQLite's triggers take one event); each stays on one line:
-- the migration runner splits at lines ending with ';'.
CREATE TRIGGER principals_insert_auth_generation AFTER INSERT ON principals BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER principals_update_auth_generation AFTER UPDATE ON principals BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER principals_delete_auth_generation AFTER DELETE ON principals BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER access_keys_insert_auth_generation AFTER INSERT ON access_keys BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER access_keys_update_auth_generation AFTER UPDATE ON access_keys BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER access_keys_delete_auth_generation AFTER DELETE ON access_keys BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER role_members_insert_auth_generation AFTER INSERT ON role_members BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER role_members_update_auth_generation AFTER UPDATE ON role_members BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER role_members_delete_auth_generation AFTER DELETE ON role_members BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER portfolio_principals_insert_auth_generation AFTER INSERT ON portfolio_principals BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER portfolio_principals_update_auth_generation AFTER UPDATE ON portfolio_principals BEGIN UPDATE auth_generation SET generation = generation + 1; END;
CREATE TRIGGER portfolio_principals_delete_auth_generation AFTER DELETE ON portfolio_principals BEGIN UPDATE auth_generation SET generation = generation + 1; END;
