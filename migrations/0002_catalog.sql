-- Catalog: templates, products and versions, grants, roles, constraints, launch roles, tag options.
CREATE TABLE templates (
    template_id TEXT PRIMARY KEY,
    content_sha256 TEXT NOT NULL,
    template_type TEXT NOT NULL,
    body TEXT NOT NULL,
    terraform_variables TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX templates_content ON templates (content_sha256);

CREATE TABLE products (
    product_id TEXT PRIMARY KEY,
    product_name TEXT NOT NULL,
    provider_name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    product_type TEXT NOT NULL DEFAULT 'Ros',
    template_type TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX products_created ON products (created_at, product_id);

CREATE TABLE product_versions (
    product_version_id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES products (product_id),
    product_version_name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    active BIGINT NOT NULL DEFAULT 1,
    guidance TEXT NOT NULL DEFAULT 'Default',
    template_type TEXT NOT NULL,
    template_url TEXT NOT NULL,
    template_id TEXT REFERENCES templates (template_id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX product_versions_product ON product_versions (product_id, created_at);

CREATE TABLE portfolio_products (
    portfolio_id TEXT NOT NULL REFERENCES portfolios (portfolio_id),
    product_id TEXT NOT NULL REFERENCES products (product_id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (portfolio_id, product_id)
);
CREATE INDEX portfolio_products_product ON portfolio_products (product_id);

-- A grant: principal_key is a principal id, or a name pattern with * when is_pattern = 1.
CREATE TABLE portfolio_principals (
    portfolio_id TEXT NOT NULL REFERENCES portfolios (portfolio_id),
    principal_type TEXT NOT NULL,
    principal_key TEXT NOT NULL,
    is_pattern BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (portfolio_id, principal_type, principal_key, is_pattern)
);

CREATE TABLE role_members (
    role_id TEXT NOT NULL REFERENCES principals (principal_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES principals (principal_id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, user_id)
);
CREATE INDEX role_members_user ON role_members (user_id);

CREATE TABLE constraints (
    constraint_id TEXT PRIMARY KEY,
    constraint_type TEXT NOT NULL,
    portfolio_id TEXT NOT NULL REFERENCES portfolios (portfolio_id),
    product_id TEXT NOT NULL REFERENCES products (product_id),
    config TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX constraints_one_per_type ON constraints (portfolio_id, product_id, constraint_type);

-- Named sets of environment variables handed to Terraform; env_sealed is a sealed JSON object.
CREATE TABLE launch_roles (
    role_name TEXT PRIMARY KEY,
    env_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE tag_options (
    tag_option_id TEXT PRIMARY KEY,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    owner TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX tag_options_key_value ON tag_options (tag_key, tag_value);

CREATE TABLE tag_option_resources (
    tag_option_id TEXT NOT NULL REFERENCES tag_options (tag_option_id),
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tag_option_id, resource_id)
);
CREATE INDEX tag_option_resources_resource ON tag_option_resources (resource_id);
