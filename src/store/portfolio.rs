//! Portfolios: named groups of products that principals are granted.

use sqlx::Row;

use super::sql::{contains_pattern, Sql};
use super::{now_ms, Page, SortOrder, Store, StoreResult};

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

/// Which portfolios a list returns.
#[derive(Debug, Clone, Default)]
pub struct PortfolioQuery {
    /// Exact name, compared case-insensitively.
    pub name: Option<String>,
    /// Substring of name, provider or description, case-insensitively.
    pub full_text: Option<String>,
}

/// What stands in the way of deleting a portfolio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortfolioDeletion {
    /// Deleted.
    Deleted,
    /// No such portfolio.
    NotFound,
}

const COLUMNS: &str = "portfolio_id, portfolio_name, provider_name, description, created_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Portfolio, sqlx::Error> {
    Ok(Portfolio {
        portfolio_id: row.try_get("portfolio_id")?,
        portfolio_name: row.try_get("portfolio_name")?,
        provider_name: row.try_get("provider_name")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Stores a new portfolio.
    pub async fn insert_portfolio(&self, p: &Portfolio) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO portfolios (portfolio_id, portfolio_name, provider_name, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&p.portfolio_id)
        .bind(&p.portfolio_name)
        .bind(&p.provider_name)
        .bind(&p.description)
        .bind(p.created_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// One portfolio.
    pub async fn portfolio(&self, id: &str) -> StoreResult<Option<Portfolio>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM portfolios WHERE portfolio_id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Changes name and provider, and the description when given; false when not found.
    pub async fn update_portfolio(&self, id: &str, name: &str, provider: &str, description: Option<&str>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE portfolios SET portfolio_name = $1, provider_name = $2, description = COALESCE($3, description), \
             updated_at = $4 WHERE portfolio_id = $5",
        )
        .bind(name)
        .bind(provider)
        .bind(description)
        .bind(now_ms())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a portfolio.
    pub async fn delete_portfolio(&self, id: &str) -> StoreResult<PortfolioDeletion> {
        let done = sqlx::query("DELETE FROM portfolios WHERE portfolio_id = $1").bind(id).execute(self.writer()).await?;
        Ok(if done.rows_affected() == 1 { PortfolioDeletion::Deleted } else { PortfolioDeletion::NotFound })
    }

    /// One page of portfolios by creation time, and the total count.
    pub async fn list_portfolios(&self, query: &PortfolioQuery, order: SortOrder, page: Page) -> StoreResult<(Vec<Portfolio>, i64)> {
        let mut filter = Sql::new(" FROM portfolios WHERE 1 = 1");
        if let Some(name) = &query.name {
            filter.push(" AND LOWER(portfolio_name) = ").text(name.to_lowercase());
        }
        if let Some(text) = &query.full_text {
            let pattern = contains_pattern(text);
            filter.push(" AND (LOWER(portfolio_name) LIKE ").text(pattern.clone()).push(" ESCAPE '\\'");
            filter.push(" OR LOWER(provider_name) LIKE ").text(pattern.clone()).push(" ESCAPE '\\'");
            filter.push(" OR LOWER(description) LIKE ").text(pattern).push(" ESCAPE '\\')");
        }
        let total: i64 = filter.behind("SELECT COUNT(*)").query().fetch_one(self.reader()).await?.try_get(0)?;
        let mut select = filter.behind(&format!("SELECT {COLUMNS}"));
        let dir = order.sql();
        select.push(&format!(" ORDER BY created_at {dir}, portfolio_id {dir} LIMIT ")).int(page.size);
        select.push(" OFFSET ").int(page.offset());
        let rows = select.query().fetch_all(self.reader()).await?;
        Ok((rows.iter().map(from_row).collect::<Result<_, _>>()?, total))
    }
}
