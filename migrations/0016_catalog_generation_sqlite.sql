-- SQLite only (PostgreSQL: migration 0017). `catalog_generation` counts every change to what the
-- catalog listings read (ListPortfolios, ListProductsAsEndUser): portfolios, products and their
-- associations. The server keeps pages of those listings in memory (store::catalog_cache) under
-- the count they were read with and reads this one row on each listing, so a change made anywhere
-- (another node, another process) is seen by the next listing. Triggers, not the code that
-- writes, so no writer can forget.
CREATE TABLE catalog_generation (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO catalog_generation (id, generation) VALUES (1, 0);
-- One trigger per table and event (SQLite's triggers take one event); each stays on one line:
-- the migration runner splits at lines ending with ';'.
CREATE TRIGGER portfolios_insert_catalog_generation AFTER INSERT ON portfolios BEGIN UPDATE catalog_generation SET generation = generation + 1; END;
CREATE TRIGGER portfolios_update_catalog_generation AFTER UPDATE ON portfolios BEGIN UPDATE catalog_generation SET generation = generation + 1; END;
CREATE TRIGGER portfolios_delete_catalog_generation AFTER DELETE ON portfolios BEGIN UPDATE catalog_generation SET generation = generation + 1; END;
CREATE TRIGGER products_insert_catalog_generation AFTER INSERT ON products BEGIN UPDATE catalog_generation SET generation = generation + 1; END;
CREATE TRIGGER products_update_catalog_generation AFTER UPDATE ON products BEGIN UPDATE catalog_generation SET generation = generation + 1; END;
CREATE TRIGGER products_delete_catalog_generation AFTER DELETE ON products BEGIN UPDATE catalog_generation SET generation = generation + 1; END;
CREATE TRIGGER portfolio_products_insert_catalog_generation AFTER INSERT ON portfolio_products BEGIN UPDATE catalog_generation SET generation = generation + 1; END;
CREATE TRIGGER portfolio_products_update_catalog_generation AFTER UPDATE ON portfolio_products BEGIN UPDATE catalog_generation SET generation = generation + 1; END;
CREATE TRIGGER portfolio_products_delete_catalog_generation AFTER DELETE ON portfolio_products BEGIN UPDATE catalog_generation SET generation = generation + 1; END;
