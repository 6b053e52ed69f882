-- PostgreSQL only (SQLite: migration 0013). `auth_generation` counts every change to what an
-- authentication or a grant check reads: principals, AccessKeys, role memberships, portfolio
-- grants. The server keeps those answers in memory (store::auth_cache) and reads this one row on
-- each lookup; a change made anywhere (another node, the `users` and `roles` commands) moves the
-- count and the cache starts over. Triggers, not the code that writes, so no writer can forget.
CREATE TABLE auth_generation (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO auth_generation (id, generation) VALUES (1, 0);
-- Statement-level triggers: one count per statement. The function stays on one line: the migration
-- runner splits at lines ending with ';'.
CREATE FUNCTION bump_auth_generation() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE auth_generation SET generation = generation + 1; RETURN NULL; END $$;
CREATE TRIGGER principals_auth_generation AFTER INSERT OR UPDATE OR DELETE ON principals FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_generation();
CREATE TRIGGER access_keys_auth_generation AFTER INSERT OR UPDATE OR DELETE ON access_keys FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_generation();
CREATE TRIGGER role_members_auth_generation AFTER INSERT OR UPDATE OR DELETE ON role_members FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_generation();
CREATE TRIGGER portfolio_principals_auth_generation AFTER INSERT OR UPDATE OR DELETE ON portfolio_principals FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_generation();
