-- PostgreSQL only (SQLite: migration 0016). `catalog_generation` counts every change to what the
-- catalog listings read: portfolios, products and their associations (store::catalog_cache).
CREATE TABLE catalog_generation (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO catalog_generation (id, generation) VALUES (1, 0);
-- Statement-level triggers: one count per statement. The function stays on one line: the migration
-- runner splits at lines ending with ';'.
CREATE FUNCTION bump_catalog_generation() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE catalog_generation SET generation = generation + 1; RETURN NULL; END $$;
CREATE TRIGGER portfolios_catalog_generation AFTER INSERT OR UPDATE OR DELETE ON portfolios FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_generation();
CREATE TRIGGER products_catalog_generation AFTER INSERT OR UPDATE OR DELETE ON products FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_generation();
CREATE TRIGGER portfolio_products_catalog_generation AFTER INSERT OR UPDATE OR DELETE ON portfolio_products FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_generation();
