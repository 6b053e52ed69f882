-- SQLite only: a trigram full-text index of provisioned product names, so that a FullTextSearch
-- (substring) filter of 3 characters or more reads the matching rows instead of every name.
-- It holds LOWER(name), the lower-casing the LIKE path compares, and matches case-sensitively:
-- both paths return the same rows. Rows are found by provisioned_product_id, not by rowid
-- (VACUUM may renumber the rowids of a table whose primary key is TEXT). Names never change and
-- provisioned products are never deleted (terminating one sets a flag), so only inserts need a
-- trigger. The trigger stays on one line: the migration runner splits at lines ending with ';'.
CREATE VIRTUAL TABLE provisioned_product_names USING fts5(
    provisioned_product_id UNINDEXED,
    lower_name,
    tokenize = 'trigram case_sensitive 1'
);
INSERT INTO provisioned_product_names (provisioned_product_id, lower_name)
    SELECT provisioned_product_id, LOWER(provisioned_product_name) FROM provisioned_products;
CREATE TRIGGER provisioned_product_names_insert AFTER INSERT ON provisioned_products BEGIN INSERT INTO provisioned_product_names (provisioned_product_id, lower_name) VALUES (new.provisioned_product_id, LOWER(new.provisioned_product_name)); END;
