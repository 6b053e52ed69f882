//! Portfolios: named groups of products that principals are granted.

use std::sync::Arc;

use super::sql::{insert, record, sql, update_named, NameFilter, Sql};
use super::{Page, SortOrder, Store, StoreResult};

record! {
    /// A stored portfolio.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Portfolio {
        /// `port-…`.
        pub portfolio_id: String,
        /// Display name.
        pub portfolio_name: String,
        /// Who provides it.
        pub provider_name: String,
        /// Free text; empty when none.
        pub description: String,
        /// ms since the epoch.
        pub created_at: i64,
    }
}

/// Which portfolios a list returns.
#[derive(Debug, Clone, Default)]
pub struct PortfolioQuery {
    /// By name (in `portfolio_name`), provider or description.
    pub names: NameFilter,
    /// Only portfolios holding this product.
    pub product_id: Option<String>,
}

/// What stands in the way of deleting a portfolio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortfolioDeletion {
    /// Deleted.
    Deleted,
    /// No such portfolio.
    NotFound,
    /// Refused: it still holds products, principals or constraints (named in the text).
    InUse(&'static str),
}

impl Store {
    /// Stores a new portfolio.
    pub async fn insert_portfolio(&self, p: &Portfolio) -> StoreResult<()> {
        super::audit::created(&p.portfolio_id);
        self.write(insert("portfolios", &[Portfolio::COLUMNS, &["updated_at"]].concat(), [p], |p, sql| {
            p.bind_values(sql);
            sql.push(", ").int(p.created_at);
        }))
        .await?;
        Ok(())
    }

    /// One portfolio.
    pub async fn portfolio(&self, id: &str) -> StoreResult<Option<Portfolio>> {
        self.fetch_optional(
            Sql::new(&format!("SELECT {} FROM portfolios WHERE portfolio_id = ", Portfolio::columns(""))).text(id),
            Portfolio::from_row,
        )
        .await
    }

    /// Changes name and provider, and the description when given; false when not found.
    pub async fn update_portfolio(&self, id: &str, name: &str, provider: &str, description: Option<&str>) -> StoreResult<bool> {
        Ok(self.write(update_named("portfolio", id, name, provider, description)).await? == 1)
    }

    /// Deletes a portfolio, with its tag option associations, unless it still holds products,
    /// principals or constraints.
    pub async fn delete_portfolio(&self, id: &str) -> StoreResult<PortfolioDeletion> {
        let mut tx = self.begin().await?;
        for (table, what) in [("portfolio_products", "products"), ("portfolio_principals", "principals"), ("constraints", "constraints")] {
            let count: i64 = sql!(&format!("SELECT COUNT(*) FROM {table} WHERE portfolio_id = $1"), id).one(&mut *tx).await?;
            if count > 0 {
                return Ok(PortfolioDeletion::InUse(what));
            }
        }
        sql!("DELETE FROM tag_option_resources WHERE resource_id = $1", id).execute(&mut *tx).await?;
        let done = sql!("DELETE FROM portfolios WHERE portfolio_id = $1", id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(if done == 1 { PortfolioDeletion::Deleted } else { PortfolioDeletion::NotFound })
    }

    /// One page of portfolios by creation time, and the total count.
    pub async fn list_portfolios(&self, query: &PortfolioQuery, order: SortOrder, page: Page) -> StoreResult<Arc<(Vec<Portfolio>, i64)>> {
        let mut filter = Sql::new(" FROM portfolios WHERE 1 = 1");
        query.names.push_to(&mut filter, "portfolio_name");
        if let Some(product) = &query.product_id {
            filter.push(" AND portfolio_id IN (SELECT portfolio_id FROM portfolio_products WHERE product_id = ").text(product.clone());
            filter.push(")");
        }
        let mut select = filter.behind(&format!("SELECT {}", Portfolio::columns("")));
        let dir = order.sql();
        select.push(&format!(" ORDER BY created_at {dir}, portfolio_id {dir}")).page(page);
        self.catalog_page(&select, self.fetch_page(&select, &filter.behind("SELECT COUNT(*)"), page, Portfolio::from_row)).await
    }
}
