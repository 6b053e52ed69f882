//! Re-sealing every secret the database keeps under a new master key (`servicecatalog master-key
//! rotate`): one transaction over every sealed column, all or nothing. The store knows where
//! sealed values live; the caller says how to open an old one and seal it anew.

use sqlx::Row;

use super::sql::sql;
use super::{Store, StoreError};

/// How a row of a table with sealed values is named: its key columns and their kinds.
#[derive(Clone, Copy)]
enum Key {
    /// One text column.
    Text(&'static str),
    /// A text column and an integer column.
    TextInt(&'static str, &'static str),
}

/// Every column holding sealed values, with its table's key.
const SEALED: &[(&str, Key, &str)] = &[
    ("settings", Key::Text("name"), "value"),
    ("access_keys", Key::Text("access_key_id"), "secret_sealed"),
    ("launch_roles", Key::Text("role_name"), "env_sealed"),
    ("provisioned_products", Key::Text("provisioned_product_id"), "parameters_sealed"),
    ("tasks", Key::Text("task_id"), "parameters_sealed"),
    ("terraform_states", Key::TextInt("provisioned_product_id", "version"), "state_sealed"),
    ("plans", Key::Text("plan_id"), "parameters_sealed"),
    ("plans", Key::Text("plan_id"), "plan_file_sealed"),
    ("webhooks", Key::Text("webhook_id"), "secret_sealed"),
];

/// Settings whose value is sealed (the others are plain text).
const SEALED_SETTINGS: &[&str] = &["master_key_check"];

/// Why values could not be re-sealed.
#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    /// A value does not open with the current key: nothing was changed.
    #[error("{table}.{column} of {row} cannot be opened with the current master key; nothing was changed")]
    Unreadable {
        /// Its table.
        table: &'static str,
        /// Its column.
        column: &'static str,
        /// Its row's key.
        row: String,
    },
    /// The database failed: nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Replaces every sealed value `v` in the database by `reseal(v)` (`None`: it cannot be
    /// opened, and the whole change is abandoned) in one transaction; returns how many values
    /// changed.
    pub async fn reseal_all(&self, reseal: impl Fn(&str) -> Option<String>) -> Result<u64, RekeyError> {
        let mut tx = self.begin().await?;
        let mut changed = 0;
        for &(table, key, column) in SEALED {
            let (key_columns, update) = match key {
                Key::Text(k) => (k.to_string(), format!("UPDATE {table} SET {column} = $1 WHERE {k} = $2")),
                Key::TextInt(k, n) => (format!("{k}, {n}"), format!("UPDATE {table} SET {column} = $1 WHERE {k} = $2 AND {n} = $3")),
            };
            let only = if table == "settings" {
                let names: Vec<String> = SEALED_SETTINGS.iter().map(|n| format!("'{n}'")).collect();
                format!(" AND name IN ({})", names.join(", "))
            } else {
                String::new()
            };
            let select = format!("SELECT {key_columns}, {column} FROM {table} WHERE {column} IS NOT NULL{only}");
            let rows = sqlx::query(&select).fetch_all(&mut *tx).await.map_err(StoreError::from)?;
            for row in rows {
                let sealed: String = row.try_get(column).map_err(StoreError::from)?;
                let (id, number): (String, Option<i64>) = match key {
                    Key::Text(k) => (row.try_get(k).map_err(StoreError::from)?, None),
                    Key::TextInt(k, n) => (row.try_get(k).map_err(StoreError::from)?, Some(row.try_get(n).map_err(StoreError::from)?)),
                };
                let resealed = reseal(&sealed).ok_or_else(|| RekeyError::Unreadable {
                    table,
                    column,
                    row: number.map_or_else(|| id.clone(), |n| format!("{id}/{n}")),
                })?;
                let query = match number {
                    Some(n) => sql!(&update, resealed, id, n),
                    None => sql!(&update, resealed, id),
                };
                query.execute(&mut *tx).await.map_err(StoreError::from)?;
                changed += 1;
            }
        }
        tx.commit().await?;
        Ok(changed)
    }
}
