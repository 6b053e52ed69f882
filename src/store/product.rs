//! Products, their versions and their membership in portfolios, with the referential rules that
//! keep a product in use from disappearing.

use std::sync::Arc;

use super::read::Row;
use super::sql::{insert, record, sql, update_named, NameFilter, Sql};
use super::webhook::{enqueue, Event};
use super::{now_ms, Page, SortOrder, Store, StoreResult};
use crate::model::EventType;
use serde_json::json;

record! {
    /// A stored product.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Product {
        /// `prod-…`.
        pub product_id: String,
        /// Display name.
        pub product_name: String,
        /// Who provides it.
        pub provider_name: String,
        /// Free text; empty when none.
        pub description: String,
        /// Always `Ros`.
        pub product_type: String,
        /// Template type of its versions.
        pub template_type: String,
        /// ms since the epoch.
        pub created_at: i64,
    }
}

/// The `Guidance` of a version that should no longer be launched: launches and updates to it
/// are refused, and the owners of provisioned products running it are told when it becomes so.
pub const DEPRECATED: &str = "Deprecated";

/// A stored product version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductVersion {
    /// `pv-…`.
    pub product_version_id: String,
    /// Owning product.
    pub product_id: String,
    /// Display name.
    pub product_version_name: String,
    /// Free text; empty when none.
    pub description: String,
    /// Whether end users see it.
    pub active: bool,
    /// Default | Recommended | Latest | Deprecated ([`DEPRECATED`]).
    pub guidance: String,
    /// Template type.
    pub template_type: String,
    /// `oss://…/template.json` as given.
    pub template_url: String,
    /// The stored template it resolves to.
    pub template_id: Option<String>,
    /// Where the template was fetched from (a JSON object), when `template_url` named a Git
    /// repository or an HTTP(S) file.
    pub template_source: Option<String>,
    /// ms since the epoch.
    pub created_at: i64,
}

/// Which products a list returns.
#[derive(Debug, Clone, Default)]
pub struct ProductQuery {
    /// By name (in `product_name`), provider or description.
    pub names: NameFilter,
    /// Only products in this portfolio.
    pub portfolio_id: Option<String>,
}

/// The changes `UpdateProductVersion` asks for; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct VersionUpdate {
    /// New name.
    pub name: String,
    /// New description.
    pub description: Option<String>,
    /// New guidance.
    pub guidance: Option<String>,
    /// New active flag.
    pub active: Option<bool>,
}

/// A tag option as a product or portfolio lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociatedTagOption {
    /// `tag-…`.
    pub tag_option_id: String,
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
    /// Whether it is applied at launch.
    pub active: bool,
    /// Owning account.
    pub owner: String,
}

/// What keeps a product (or its last version) from being deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductUse {
    /// It belongs to this portfolio.
    Portfolio(String),
    /// A constraint of this portfolio names it.
    Constraint(String),
    /// This provisioned product (not terminated) was launched from it.
    Provisioned(String),
}

impl std::fmt::Display for ProductUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProductUse::Portfolio(id) => write!(f, "it is associated with portfolio {id}"),
            ProductUse::Constraint(id) => write!(f, "constraints of portfolio {id} apply to it"),
            ProductUse::Provisioned(id) => write!(f, "provisioned product {id} was launched from it"),
        }
    }
}

/// Outcome of a deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// Deleted.
    Deleted,
    /// No such row.
    NotFound,
    /// Refused: still in use.
    InUse(ProductUse),
    /// Refused: the last version of a product in use.
    LastVersion(ProductUse),
}

/// `from` and the `WHERE` clause of `query`.
fn product_filter(mut from: Sql, query: &ProductQuery) -> Sql {
    from.push(" WHERE 1 = 1");
    query.names.push_to(&mut from, "product_name");
    if let Some(portfolio) = &query.portfolio_id {
        from.push(" AND product_id IN (SELECT product_id FROM portfolio_products WHERE portfolio_id = ").text(portfolio.clone());
        from.push(")");
    }
    from
}

/// Orders a product `select` by creation time and cuts out `page`.
fn page_by_creation(select: &mut Sql, order: SortOrder, page: Page) {
    let dir = order.sql();
    select.push(&format!(" ORDER BY created_at {dir}, product_id {dir}")).page(page);
}

const VERSION_COLUMNS: &str = "product_version_id, product_id, product_version_name, description, active, guidance, \
                               template_type, template_url, template_id, template_source, created_at";

fn version_from_row(row: &Row<'_>) -> StoreResult<ProductVersion> {
    Ok(ProductVersion {
        product_version_id: row.get("product_version_id")?,
        product_id: row.get("product_id")?,
        product_version_name: row.get("product_version_name")?,
        description: row.get("description")?,
        active: row.get::<i64>("active")? != 0,
        guidance: row.get("guidance")?,
        template_type: row.get("template_type")?,
        template_url: row.get("template_url")?,
        template_id: row.get("template_id")?,
        template_source: row.get("template_source")?,
        created_at: row.get("created_at")?,
    })
}

async fn insert_version(conn: &mut sqlx::AnyConnection, v: &ProductVersion) -> StoreResult<()> {
    sql!(
        &format!("INSERT INTO product_versions ({VERSION_COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)"),
        &v.product_version_id,
        &v.product_id,
        &v.product_version_name,
        &v.description,
        i64::from(v.active),
        &v.guidance,
        &v.template_type,
        &v.template_url,
        &v.template_id,
        &v.template_source,
        v.created_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Stores a new product with its versions, in one transaction.
    pub async fn insert_product(&self, p: &Product, versions: &[ProductVersion]) -> StoreResult<()> {
        super::audit::created(&p.product_id);
        let mut tx = self.begin().await?;
        insert("products", &[Product::COLUMNS, &["updated_at"]].concat(), [p], |p, sql| {
            p.bind_values(sql);
            sql.push(", ").int(p.created_at);
        })
        .execute(&mut *tx)
        .await?;
        for v in versions {
            insert_version(&mut tx, v).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One product.
    pub async fn product(&self, id: &str) -> StoreResult<Option<Product>> {
        let mut sql = Sql::new(&format!("SELECT {} FROM products WHERE product_id = ", Product::columns("")));
        sql.text(id);
        self.fetch_optional(&sql, Product::from_row).await
    }

    /// Changes name and provider, and the description when given; false when not found.
    pub async fn update_product(&self, id: &str, name: &str, provider: &str, description: Option<&str>) -> StoreResult<bool> {
        Ok(self.write(update_named("product", id, name, provider, description)).await? == 1)
    }

    /// Why the product cannot go away, if anything keeps it: a portfolio association, a
    /// constraint, or a provisioned product that is not terminated. The provisioning engine's
    /// own references belong here too, so that every deletion path asks this one function.
    pub async fn product_use(&self, product_id: &str) -> StoreResult<Option<ProductUse>> {
        type UseOf = fn(String) -> ProductUse;
        let checks: [(&str, &str, UseOf); 3] = [
            ("SELECT portfolio_id FROM portfolio_products WHERE product_id = ", "", ProductUse::Portfolio),
            ("SELECT portfolio_id FROM constraints WHERE product_id = ", "", ProductUse::Constraint),
            ("SELECT provisioned_product_id FROM provisioned_products WHERE product_id = ", " AND terminated = 0", ProductUse::Provisioned),
        ];
        for (head, tail, make) in checks {
            let mut sql = Sql::new(head);
            sql.text(product_id).push(tail).push(" LIMIT 1");
            let found: Option<String> = self.fetch_value(&sql).await?;
            if let Some(id) = found {
                return Ok(Some(make(id)));
            }
        }
        Ok(None)
    }

    /// Deletes a product, its versions and its tag option associations unless it is in use.
    pub async fn delete_product(&self, id: &str) -> StoreResult<Deletion> {
        if self.product(id).await?.is_none() {
            return Ok(Deletion::NotFound);
        }
        if let Some(used) = self.product_use(id).await? {
            return Ok(Deletion::InUse(used));
        }
        let mut tx = self.begin().await?;
        for sql in [
            "DELETE FROM product_versions WHERE product_id = $1",
            "DELETE FROM tag_option_resources WHERE resource_id = $1",
            "DELETE FROM products WHERE product_id = $1",
        ] {
            sql!(sql, id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Deletion::Deleted)
    }

    /// One page of products by creation time, and the total count.
    pub async fn list_products(&self, query: &ProductQuery, order: SortOrder, page: Page) -> StoreResult<(Vec<Product>, i64)> {
        let filter = product_filter(Sql::new(" FROM products"), query);
        let mut select = filter.behind(&format!("SELECT {}", Product::columns("")));
        page_by_creation(&mut select, order, page);
        self.fetch_page(&select, &filter.behind("SELECT COUNT(*)"), page, Product::from_row).await
    }

    /// One page of the products held by any of `portfolios` (an end user's grants), each with how
    /// many of them hold it, and the total count: one statement, where a product list and then
    /// its links would be two.
    pub async fn list_products_in(
        &self,
        portfolios: &[String],
        query: &ProductQuery,
        order: SortOrder,
        page: Page,
    ) -> StoreResult<Arc<(Vec<(Product, i64)>, i64)>> {
        if portfolios.is_empty() {
            return Ok(Arc::new((Vec::new(), 0)));
        }
        let mut from = Sql::new(
            " FROM products JOIN (SELECT product_id AS held_product_id, COUNT(*) AS holders FROM portfolio_products WHERE portfolio_id IN (",
        );
        for (i, portfolio) in portfolios.iter().enumerate() {
            from.push(if i == 0 { "" } else { ", " }).text(portfolio.clone());
        }
        from.push(") GROUP BY product_id) held ON held.held_product_id = products.product_id");
        let filter = product_filter(from, query);
        let mut select = filter.behind(&format!("SELECT {}, holders", Product::columns("")));
        page_by_creation(&mut select, order, page);
        let count = filter.behind("SELECT COUNT(*)");
        let read = self.fetch_page(&select, &count, page, |row| Ok((Product::from_row(row)?, row.get("holders")?)));
        self.catalog_page(&select, read).await
    }

    /// Adds a version to an existing product.
    pub async fn insert_product_version(&self, v: &ProductVersion) -> StoreResult<()> {
        super::audit::created(&v.product_version_id);
        let mut conn = self.writer().acquire().await?;
        insert_version(&mut conn, v).await
    }

    /// One version.
    pub async fn product_version(&self, id: &str) -> StoreResult<Option<ProductVersion>> {
        let mut sql = Sql::new(&format!("SELECT {VERSION_COLUMNS} FROM product_versions WHERE product_version_id = "));
        sql.text(id);
        self.fetch_optional(&sql, version_from_row).await
    }

    /// The versions of a product, oldest first; only active ones when `active_only`.
    pub async fn product_versions(&self, product_id: &str, active_only: bool) -> StoreResult<Vec<ProductVersion>> {
        let mut sql = Sql::new(&format!("SELECT {VERSION_COLUMNS} FROM product_versions WHERE product_id = "));
        sql.text(product_id);
        if active_only {
            sql.push(" AND active = 1");
        }
        sql.push(" ORDER BY created_at, product_version_id");
        self.fetch_all(&sql, version_from_row).await
    }

    /// Applies an update; false when not found. A version that becomes `Deprecated` tells
    /// webhooks (`VersionDeprecated`), once for each live provisioned product running it, in the
    /// same transaction.
    pub async fn update_product_version(&self, id: &str, update: &VersionUpdate) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let before: Option<String> =
            sql!("SELECT guidance FROM product_versions WHERE product_version_id = $1", id).value(&mut *tx).await?;
        let done = sql!(
            "UPDATE product_versions SET product_version_name = $1, description = COALESCE($2, description), \
             guidance = COALESCE($3, guidance), active = COALESCE($4, active), updated_at = $5 WHERE product_version_id = $6",
            &update.name,
            &update.description,
            &update.guidance,
            update.active.map(i64::from),
            now_ms(),
            id
        )
        .execute(&mut *tx)
        .await?;
        if done == 1 && update.guidance.as_deref() == Some(DEPRECATED) && before.as_deref() != Some(DEPRECATED) {
            let running = sql!(
                "SELECT provisioned_product_id, provisioned_product_name, owner_principal_id, portfolio_id, product_id \
                 FROM provisioned_products WHERE product_version_id = $1 AND terminated = 0 ORDER BY created_at, provisioned_product_id",
                id
            );
            let rows = running.query().fetch_all(&mut *tx).await?;
            let events = rows
                .iter()
                .map(|row| {
                    let row = Row::Any(row);
                    Ok(Event {
                        event_type: EventType::VersionDeprecated,
                        portfolio_id: row.get("portfolio_id")?,
                        fields: json!({
                            "ProvisionedProductId": row.get::<String>("provisioned_product_id")?,
                            "ProvisionedProductName": row.get::<String>("provisioned_product_name")?,
                            "OwnerPrincipalId": row.get::<String>("owner_principal_id")?,
                            "ProductId": row.get::<String>("product_id")?,
                            "ProductVersionId": id,
                            "ProductVersionName": &update.name,
                        }),
                    })
                })
                .collect::<StoreResult<Vec<Event>>>()?;
            for event in &events {
                enqueue(&mut tx, event).await?;
            }
        }
        tx.commit().await?;
        Ok(done == 1)
    }

    /// How many live provisioned products of `product_id` run a `Deprecated` version.
    pub async fn deprecated_provisioned_products(&self, product_id: &str) -> StoreResult<i64> {
        let mut sql = Sql::new(
            "SELECT COUNT(*) FROM provisioned_products pp JOIN product_versions v ON v.product_version_id = pp.product_version_id \
             WHERE pp.terminated = 0 AND v.guidance = ",
        );
        sql.text(DEPRECATED).push(" AND pp.product_id = ").text(product_id);
        self.fetch_count(&sql).await
    }

    /// Deletes a version unless a live provisioned product runs it, or it is the last version of
    /// a product in use.
    pub async fn delete_product_version(&self, id: &str) -> StoreResult<Deletion> {
        let Some(version) = self.product_version(id).await? else { return Ok(Deletion::NotFound) };
        let mut sql = Sql::new("SELECT provisioned_product_id FROM provisioned_products WHERE product_version_id = ");
        sql.text(id).push(" AND terminated = 0 LIMIT 1");
        let running: Option<String> = self.fetch_value(&sql).await?;
        if let Some(running) = running {
            return Ok(Deletion::InUse(ProductUse::Provisioned(running)));
        }
        let mut tx = self.begin().await?;
        let count: i64 = sql!("SELECT COUNT(*) FROM product_versions WHERE product_id = $1", &version.product_id).one(&mut *tx).await?;
        if count == 1 {
            if let Some(used) = self.product_use(&version.product_id).await? {
                return Ok(Deletion::LastVersion(used));
            }
        }
        sql!("DELETE FROM product_versions WHERE product_version_id = $1", id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Deletion::Deleted)
    }

    /// Puts a product in a portfolio (again: no change).
    pub async fn associate_product(&self, portfolio_id: &str, product_id: &str) -> StoreResult<()> {
        self.write(sql!(
            "INSERT INTO portfolio_products (portfolio_id, product_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (portfolio_id, product_id) DO NOTHING",
            portfolio_id,
            product_id,
            now_ms()
        ))
        .await?;
        Ok(())
    }

    /// Takes a product out of a portfolio unless constraints of the pair remain; `Ok(false)`
    /// when constraints are in the way.
    pub async fn disassociate_product(&self, portfolio_id: &str, product_id: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let constraints: i64 =
            sql!("SELECT COUNT(*) FROM constraints WHERE portfolio_id = $1 AND product_id = $2", portfolio_id, product_id)
                .one(&mut *tx)
                .await?;
        if constraints > 0 {
            return Ok(false);
        }
        sql!("DELETE FROM portfolio_products WHERE portfolio_id = $1 AND product_id = $2", portfolio_id, product_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// `(product_id, portfolio_id)` pairs linking any of `products` to any of `portfolios`
    /// (launch options among an end user's grants).
    pub async fn product_portfolios(&self, products: &[String], portfolios: &[String]) -> StoreResult<Vec<(String, String)>> {
        if products.is_empty() || portfolios.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new("SELECT product_id, portfolio_id FROM portfolio_products WHERE product_id IN (");
        for (i, id) in products.iter().enumerate() {
            sql.push(if i == 0 { "" } else { ", " }).text(id.clone());
        }
        sql.push(") AND portfolio_id IN (");
        for (i, id) in portfolios.iter().enumerate() {
            sql.push(if i == 0 { "" } else { ", " }).text(id.clone());
        }
        sql.push(") ORDER BY product_id, portfolio_id");
        self.fetch_all(&sql, |row| Ok((row.get("product_id")?, row.get("portfolio_id")?))).await
    }

    /// The tag options associated with a resource, by key and value.
    pub async fn resource_tag_options(&self, resource_id: &str) -> StoreResult<Vec<AssociatedTagOption>> {
        let mut sql = Sql::new(
            "SELECT t.tag_option_id, t.tag_key, t.tag_value, t.active, t.owner FROM tag_options t \
             JOIN tag_option_resources r ON r.tag_option_id = t.tag_option_id WHERE r.resource_id = ",
        );
        sql.text(resource_id).push(" ORDER BY t.tag_key, t.tag_value");
        self.fetch_all(&sql, |row| {
            Ok(AssociatedTagOption {
                tag_option_id: row.get("tag_option_id")?,
                key: row.get("tag_key")?,
                value: row.get("tag_value")?,
                active: row.get::<i64>("active")? != 0,
                owner: row.get("owner")?,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::portfolio::{Portfolio, PortfolioDeletion, PortfolioQuery};
    use crate::store::{testing, Page, SortOrder};

    fn product(id: &str, name: &str, at: i64) -> Product {
        Product {
            product_id: id.into(),
            product_name: name.into(),
            provider_name: "it".into(),
            description: format!("about {name}"),
            product_type: "Ros".into(),
            template_type: "RosTerraformTemplate".into(),
            created_at: at,
        }
    }

    fn version(id: &str, product_id: &str, at: i64) -> ProductVersion {
        ProductVersion {
            product_version_id: id.into(),
            product_id: product_id.into(),
            product_version_name: "1.0".into(),
            description: String::new(),
            active: true,
            guidance: "Default".into(),
            template_type: "RosTerraformTemplate".into(),
            template_url: "oss://x".into(),
            template_id: None,
            template_source: None,
            created_at: at,
        }
    }

    async fn portfolio(store: &Store, id: &str) {
        let p = Portfolio {
            portfolio_id: id.into(),
            portfolio_name: id.into(),
            provider_name: "p".into(),
            description: String::new(),
            created_at: 1,
        };
        store.insert_portfolio(&p).await.unwrap();
    }

    const ALL: Page = Page { number: 1, size: 100 };

    fn ids(products: &[Product]) -> Vec<&str> {
        products.iter().map(|p| p.product_id.as_str()).collect()
    }

    #[tokio::test]
    async fn products_are_listed_filtered_and_scoped() {
        testing::each_store(|store| async move {
            store.insert_product(&product("prod-a", "Web Server", 1), &[version("pv-a", "prod-a", 1)]).await.unwrap();
            store.insert_product(&product("prod-b", "Database", 2), &[]).await.unwrap();
            store.insert_product(&product("prod-c", "50%_off", 3), &[]).await.unwrap();
            portfolio(&store, "port-1").await;
            portfolio(&store, "port-2").await;
            store.associate_product("port-1", "prod-a").await.unwrap();
            store.associate_product("port-1", "prod-a").await.unwrap();
            store.associate_product("port-2", "prod-b").await.unwrap();

            let list = |q: ProductQuery, order| {
                let store = store.clone();
                async move { store.list_products(&q, order, ALL).await.unwrap() }
            };
            let (all, total) = list(ProductQuery::default(), SortOrder::Desc).await;
            assert_eq!((ids(&all), total), (vec!["prod-c", "prod-b", "prod-a"], 3));
            let (by_name, _) = list(
                ProductQuery { names: NameFilter { name: Some("web SERVER".into()), ..Default::default() }, ..Default::default() },
                SortOrder::Asc,
            )
            .await;
            assert_eq!(ids(&by_name), ["prod-a"]);
            let (by_text, _) = list(
                ProductQuery { names: NameFilter { full_text: Some("%_".into()), ..Default::default() }, ..Default::default() },
                SortOrder::Asc,
            )
            .await;
            assert_eq!(ids(&by_text), ["prod-c"]);
            let (in_one, _) = list(ProductQuery { portfolio_id: Some("port-1".into()), ..Default::default() }, SortOrder::Asc).await;
            assert_eq!(ids(&in_one), ["prod-a"]);
            store.associate_product("port-2", "prod-a").await.unwrap();
            let in_both = |portfolios: &[&str], query: ProductQuery| {
                let (store, portfolios) = (store.clone(), portfolios.iter().map(|p| p.to_string()).collect::<Vec<_>>());
                async move {
                    let listing = store.list_products_in(&portfolios, &query, SortOrder::Asc, ALL).await.unwrap();
                    (listing.0.iter().map(|(p, holders)| (p.product_id.clone(), *holders)).collect::<Vec<_>>(), listing.1)
                }
            };
            assert_eq!(
                in_both(&["port-1", "port-2"], ProductQuery::default()).await,
                (vec![("prod-a".into(), 2), ("prod-b".into(), 1)], 2)
            );
            assert_eq!(in_both(&["port-2"], ProductQuery::default()).await, (vec![("prod-a".into(), 1), ("prod-b".into(), 1)], 2));
            let by_name = ProductQuery { names: NameFilter { name: Some("database".into()), ..Default::default() }, ..Default::default() };
            assert_eq!(in_both(&["port-1", "port-2"], by_name).await, (vec![("prod-b".into(), 1)], 1));
            assert_eq!(in_both(&[], ProductQuery::default()).await, (vec![], 0));
            store.disassociate_product("port-2", "prod-a").await.unwrap();
            let (page, total) = store.list_products(&ProductQuery::default(), SortOrder::Asc, Page { number: 2, size: 2 }).await.unwrap();
            assert_eq!((ids(&page), total), (vec!["prod-c"], 3));

            let links = store.product_portfolios(&["prod-a".into(), "prod-b".into()], &["port-1".into()]).await.unwrap();
            assert_eq!(links, [("prod-a".to_string(), "port-1".to_string())]);
            let q = PortfolioQuery { product_id: Some("prod-b".into()), ..Default::default() };
            let listing = store.list_portfolios(&q, SortOrder::Asc, ALL).await.unwrap();
            assert_eq!(listing.0.iter().map(|p| p.portfolio_id.as_str()).collect::<Vec<_>>(), ["port-2"]);
        })
        .await;
    }

    #[tokio::test]
    async fn products_in_use_are_kept() {
        testing::each_store(|store| async move {
            store.insert_product(&product("prod-a", "a", 1), &[version("pv-1", "prod-a", 1), version("pv-2", "prod-a", 2)]).await.unwrap();
            portfolio(&store, "port-1").await;
            store.associate_product("port-1", "prod-a").await.unwrap();

            assert_eq!(store.delete_product("prod-a").await.unwrap(), Deletion::InUse(ProductUse::Portfolio("port-1".into())));
            assert_eq!(store.delete_portfolio("port-1").await.unwrap(), PortfolioDeletion::InUse("products"));
            assert_eq!(store.delete_product_version("pv-1").await.unwrap(), Deletion::Deleted);
            assert_eq!(store.delete_product_version("pv-2").await.unwrap(), Deletion::LastVersion(ProductUse::Portfolio("port-1".into())));
            assert_eq!(store.delete_product_version("pv-1").await.unwrap(), Deletion::NotFound);

            Sql::new(
                "INSERT INTO constraints (constraint_id, constraint_type, portfolio_id, product_id, config, created_at, updated_at) \
                 VALUES ('cons-1', 'Launch', 'port-1', 'prod-a', '{}', 1, 1)",
            )
            .execute(store.writer())
            .await
            .unwrap();
            assert!(!store.disassociate_product("port-1", "prod-a").await.unwrap());
            sql!("DELETE FROM constraints").execute(store.writer()).await.unwrap();
            assert!(store.disassociate_product("port-1", "prod-a").await.unwrap());
            assert_eq!(store.delete_portfolio("port-1").await.unwrap(), PortfolioDeletion::Deleted);

            Sql::new(
                "INSERT INTO provisioned_products (provisioned_product_id, provisioned_product_name, owner_principal_id, \
                 owner_principal_type, product_id, product_version_id, portfolio_id, stack_region_id, stack_id, status, \
                 parameters_sealed, created_at, updated_at) \
                 VALUES ('pp-1', 'n', '1', 'RamUser', 'prod-a', 'pv-2', 'port-1', 'r', 's', 'Available', '', 1, 1)",
            )
            .execute(store.writer())
            .await
            .unwrap();
            assert_eq!(store.delete_product("prod-a").await.unwrap(), Deletion::InUse(ProductUse::Provisioned("pp-1".into())));
            assert_eq!(store.delete_product_version("pv-2").await.unwrap(), Deletion::InUse(ProductUse::Provisioned("pp-1".into())));
            sql!("UPDATE provisioned_products SET terminated = 1").execute(store.writer()).await.unwrap();
            assert_eq!(store.delete_product("prod-a").await.unwrap(), Deletion::Deleted);
            assert!(store.product("prod-a").await.unwrap().is_none());
            assert!(store.product_version("pv-2").await.unwrap().is_none());
            assert_eq!(store.delete_product("prod-a").await.unwrap(), Deletion::NotFound);
        })
        .await;
    }

    #[tokio::test]
    async fn versions_update_only_what_is_given() {
        testing::each_store(|store| async move {
            store.insert_product(&product("prod-a", "a", 1), &[]).await.unwrap();
            store.insert_product_version(&ProductVersion { description: "d".into(), ..version("pv-1", "prod-a", 1) }).await.unwrap();
            let update = VersionUpdate { name: "2.0".into(), active: Some(false), ..Default::default() };
            assert!(store.update_product_version("pv-1", &update).await.unwrap());
            let v = store.product_version("pv-1").await.unwrap().unwrap();
            assert_eq!(
                (v.product_version_name.as_str(), v.description.as_str(), v.active, v.guidance.as_str()),
                ("2.0", "d", false, "Default")
            );
            assert!(store.product_versions("prod-a", true).await.unwrap().is_empty());
            assert_eq!(store.product_versions("prod-a", false).await.unwrap().len(), 1);
            assert!(!store.update_product_version("pv-x", &update).await.unwrap());
            assert!(store.update_product("prod-a", "b", "p", None).await.unwrap());
            assert_eq!(store.product("prod-a").await.unwrap().unwrap().description, "about a");
        })
        .await;
    }
}
