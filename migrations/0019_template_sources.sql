-- Where a product version's template was fetched from (a JSON object {Url, Commit, Sha256}), when
-- its TemplateUrl named a Git repository or an HTTP(S) file rather than an uploaded template.
ALTER TABLE product_versions ADD COLUMN template_source TEXT;
