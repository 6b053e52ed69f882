//! Constraints: at most one per (portfolio, product, type), with their Config stored as the
//! canonical JSON text of a constraint's Config (parsed by `catalog::constraint`).

use super::sql::{insert, record, sql, Sql};
use super::{now_ms, Store, StoreResult};

record! {
    /// A stored constraint.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Constraint {
        /// `cons-…`.
        pub constraint_id: String,
        /// `Launch`, `Template`, `Approval` or `StackRegion`.
        pub constraint_type: String,
        /// `port-…`.
        pub portfolio_id: String,
        /// `prod-…`.
        pub product_id: String,
        /// Canonical Config JSON.
        pub config: String,
        /// Free text; empty when none.
        pub description: String,
        /// ms since the epoch.
        pub created_at: i64,
    }
}

/// A constraint with the names of its product and portfolio (empty when gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedConstraint {
    pub constraint: Constraint,
    pub product_name: String,
    pub portfolio_name: String,
}

/// Why a constraint could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintInsert {
    /// Stored.
    Created,
    /// The product is not in the portfolio.
    NotAssociated,
    /// The (portfolio, product) pair has a constraint of this type already (its id).
    Duplicate(String),
}

impl Store {
    /// Stores a new constraint if its product belongs to its portfolio and the pair has no
    /// constraint of that type; checked and written in one transaction.
    pub async fn insert_constraint(&self, c: &Constraint) -> StoreResult<ConstraintInsert> {
        super::audit::created(&c.constraint_id);
        let mut tx = self.begin().await?;
        let associated: i64 =
            sql!("SELECT COUNT(*) FROM portfolio_products WHERE portfolio_id = $1 AND product_id = $2", &c.portfolio_id, &c.product_id)
                .one(&mut *tx)
                .await?;
        if associated == 0 {
            return Ok(ConstraintInsert::NotAssociated);
        }
        let existing: Option<String> = sql!(
            "SELECT constraint_id FROM constraints WHERE portfolio_id = $1 AND product_id = $2 AND constraint_type = $3",
            &c.portfolio_id,
            &c.product_id,
            &c.constraint_type
        )
        .value(&mut *tx)
        .await?;
        if let Some(id) = existing {
            return Ok(ConstraintInsert::Duplicate(id));
        }
        insert("constraints", &[Constraint::COLUMNS, &["updated_at"]].concat(), [c], |c, sql| {
            c.bind_values(sql);
            sql.push(", ").int(c.created_at);
        })
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ConstraintInsert::Created)
    }

    /// One constraint.
    pub async fn constraint(&self, id: &str) -> StoreResult<Option<Constraint>> {
        self.fetch_optional(
            Sql::new(&format!("SELECT {} FROM constraints WHERE constraint_id = ", Constraint::columns(""))).text(id),
            Constraint::from_row,
        )
        .await
    }

    /// Replaces the Config, and the description when given; false when not found.
    pub async fn update_constraint(&self, id: &str, config: &str, description: Option<&str>) -> StoreResult<bool> {
        let done = self
            .write(sql!(
                "UPDATE constraints SET config = $1, description = COALESCE($2, description), updated_at = $3 WHERE constraint_id = $4",
                config,
                description,
                now_ms(),
                id
            ))
            .await?;
        Ok(done == 1)
    }

    /// Deletes a constraint; false when not found.
    pub async fn delete_constraint(&self, id: &str) -> StoreResult<bool> {
        let done = self.write(sql!("DELETE FROM constraints WHERE constraint_id = $1", id)).await?;
        Ok(done == 1)
    }

    /// The constraints of the launch option (portfolio, product), by type.
    pub async fn constraints_for(&self, portfolio_id: &str, product_id: &str) -> StoreResult<Vec<Constraint>> {
        let mut sql = Sql::new(&format!("SELECT {} FROM constraints WHERE portfolio_id = ", Constraint::columns("")));
        sql.text(portfolio_id).push(" AND product_id = ").text(product_id).push(" ORDER BY constraint_type");
        self.fetch_all(&sql, Constraint::from_row).await
    }

    /// The constraints of a portfolio, of a product, or of one pair (all of them when neither is
    /// given), by portfolio, product and type.
    pub async fn constraints_where(&self, portfolio_id: Option<&str>, product_id: Option<&str>) -> StoreResult<Vec<NamedConstraint>> {
        let mut sql = Sql::new(&format!(
            "SELECT {}, COALESCE(pr.product_name, '') AS product_name, COALESCE(po.portfolio_name, '') AS portfolio_name \
             FROM constraints c LEFT JOIN products pr ON pr.product_id = c.product_id \
             LEFT JOIN portfolios po ON po.portfolio_id = c.portfolio_id WHERE 1 = 1",
            Constraint::columns("c.")
        ));
        if let Some(portfolio_id) = portfolio_id {
            sql.push(" AND c.portfolio_id = ").text(portfolio_id);
        }
        if let Some(product_id) = product_id {
            sql.push(" AND c.product_id = ").text(product_id);
        }
        sql.push(" ORDER BY c.portfolio_id, c.product_id, c.constraint_type");
        self.fetch_all(&sql, |row| {
            Ok(NamedConstraint {
                constraint: Constraint::from_row(row)?,
                product_name: row.get("product_name")?,
                portfolio_name: row.get("portfolio_name")?,
            })
        })
        .await
    }

    /// `(constraint id, Config)` of every constraint of type `kind`, by id.
    pub async fn constraints_of_type(&self, kind: &str) -> StoreResult<Vec<(String, String)>> {
        let mut sql = Sql::new("SELECT constraint_id, config FROM constraints WHERE constraint_type = ");
        sql.text(kind).push(" ORDER BY constraint_id");
        self.fetch_all(&sql, |row| Ok((row.get("constraint_id")?, row.get("config")?))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    async fn seed(store: &Store) {
        for sql in [
            "INSERT INTO portfolios (portfolio_id, portfolio_name, provider_name, description, created_at, updated_at) VALUES ('port-1', 'p', 'p', '', 1, 1)",
            "INSERT INTO products (product_id, product_name, provider_name, template_type, created_at, updated_at) VALUES ('prod-1', 'a', 'p', 'RosTerraformTemplate', 1, 1)",
            "INSERT INTO products (product_id, product_name, provider_name, template_type, created_at, updated_at) VALUES ('prod-2', 'b', 'p', 'RosTerraformTemplate', 1, 1)",
            "INSERT INTO portfolio_products (portfolio_id, product_id, created_at) VALUES ('port-1', 'prod-1', 1)",
        ] {
            Sql::new(sql).execute(store.writer()).await.unwrap();
        }
    }

    fn launch(id: &str, product: &str, role: &str) -> Constraint {
        Constraint {
            constraint_id: id.into(),
            constraint_type: "Launch".into(),
            portfolio_id: "port-1".into(),
            product_id: product.into(),
            config: format!(r#"{{"LocalRoleName":"{role}"}}"#),
            description: String::new(),
            created_at: 5,
        }
    }

    #[tokio::test]
    async fn constraints_need_an_association_and_are_unique_per_type() {
        testing::each_store(|store| async move {
            seed(&store).await;
            assert_eq!(store.insert_constraint(&launch("cons-1", "prod-1", "r")).await.unwrap(), ConstraintInsert::Created);
            assert_eq!(
                store.insert_constraint(&launch("cons-2", "prod-1", "r")).await.unwrap(),
                ConstraintInsert::Duplicate("cons-1".into())
            );
            assert_eq!(store.insert_constraint(&launch("cons-3", "prod-2", "r")).await.unwrap(), ConstraintInsert::NotAssociated);
            let mut region = launch("cons-4", "prod-1", "r");
            region.constraint_type = "StackRegion".into();
            region.config = r#"{"StackRegions":["cn-hangzhou"]}"#.into();
            assert_eq!(store.insert_constraint(&region).await.unwrap(), ConstraintInsert::Created);
            let types: Vec<String> =
                store.constraints_for("port-1", "prod-1").await.unwrap().into_iter().map(|c| c.constraint_type).collect();
            assert_eq!(types, ["Launch", "StackRegion"]);
            let ids = |found: Vec<NamedConstraint>| found.into_iter().map(|c| c.constraint.constraint_id).collect::<Vec<_>>();
            let named = store.constraints_where(Some("port-1"), None).await.unwrap();
            assert_eq!((named[0].product_name.as_str(), named[0].portfolio_name.as_str()), ("a", "p"));
            assert_eq!(ids(named), ["cons-1", "cons-4"]);
            assert_eq!(ids(store.constraints_where(None, Some("prod-1")).await.unwrap()), ["cons-1", "cons-4"]);
            assert!(store.constraints_where(Some("port-1"), Some("prod-2")).await.unwrap().is_empty());
            assert_eq!(
                store.constraints_of_type("Launch").await.unwrap(),
                [("cons-1".to_string(), r#"{"LocalRoleName":"r"}"#.to_string())]
            );

            assert!(store.update_constraint("cons-1", r#"{"LocalRoleName":"s"}"#, Some("d")).await.unwrap());
            let c = store.constraint("cons-1").await.unwrap().unwrap();
            assert_eq!((c.config.as_str(), c.description.as_str()), (r#"{"LocalRoleName":"s"}"#, "d"));
            assert!(!store.update_constraint("cons-x", "{}", None).await.unwrap());
            assert!(store.delete_constraint("cons-1").await.unwrap());
            assert!(!store.delete_constraint("cons-1").await.unwrap());
            assert!(store.constraint("cons-1").await.unwrap().is_none());
        })
        .await;
    }
}
