-- PostgreSQL only (SQLite: migration 0011). A trigram index of the lower-cased provisioned product
-- names, so that a FullTextSearch filter (LOWER(name) LIKE '%text%') of 3 characters or more reads
-- the matching rows instead of comparing every name. The planner picks it for rare texts and walks
-- the list's order for common ones; both return the same rows. Without fastupdate: names are added
-- to the index as they are written (a launch is rare), where the pending list of new entries that
-- fastupdate keeps until a vacuum would be read whole by every search (up to 4 MB) and makes the
-- planner prefer comparing every name.
-- pg_trgm ships with PostgreSQL but a database user may not be allowed to create it: then, and when
-- the extension is missing, the migration records itself all the same and FullTextSearch compares
-- every name as before (docs/cluster.md says how to add the index later). The extension goes into
-- the public schema unless it exists already; the index names the operator class in whichever
-- schema holds it.
-- Each block stays on one line: the migration runner splits at lines ending with ';'.
DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public; EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'pg_trgm cannot be created (%): FullTextSearch compares every name', SQLERRM; END $$;
DO $$ DECLARE trgm_schema TEXT; BEGIN SELECT n.nspname INTO trgm_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'; IF trgm_schema IS NOT NULL THEN EXECUTE format('CREATE INDEX provisioned_products_name_trgm ON provisioned_products USING gin (LOWER(provisioned_product_name) %I.gin_trgm_ops) WITH (fastupdate = off)', trgm_schema); END IF; EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'no trigram index of provisioned product names (%): FullTextSearch compares every name', SQLERRM; END $$;
