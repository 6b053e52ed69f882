//! A small builder for statements whose WHERE clause depends on the request: it numbers
//! placeholders `$1, $2, …` in order of appearance, which both SQLite and PostgreSQL accept
//! (sqlx's own builder writes `?` for the `Any` driver, which PostgreSQL refuses).

use std::fmt::Write as _;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

use super::read::{Column, Row};
use super::{now_ms, Page, StoreError, StoreResult};

use crate::model::{
    CampaignId, CampaignItemStatus, CampaignStatus, ConstraintType, DeliveryStatus, DriftStatus, EventType, OperationType, PlanId,
    PlanStatus, ProvisionedProductId, ProvisionedProductStatus, Remediation, ScheduleKind, TaskId, TaskStatus, UpdatePolicy, WebhookId,
};

/// Stores the model's types (src/model.rs) as their text: sqlx binds and decodes them for both
/// databases, rusqlite decodes them for SQLite reads (store::read).
macro_rules! text_column {
    ($($name:ty),*) => {$(
        impl sqlx::Type<Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<Any>>::type_info()
            }

            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <String as sqlx::Type<Any>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, Any> for $name {
            fn encode_by_ref(&self, buf: &mut <Any as sqlx::Database>::ArgumentBuffer<'q>) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<'q, Any>>::encode(self.to_string(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, Any> for $name {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<String as sqlx::Decode<'r, Any>>::decode(value)?.parse()?)
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                value.as_str()?.parse().map_err(|e: <$name as std::str::FromStr>::Err| rusqlite::types::FromSqlError::Other(e.into()))
            }
        }

        impl ToBind for $name {
            fn to_bind(&self) -> Bind {
                Bind::Text(Some(self.to_string()))
            }

            fn null() -> Bind {
                Bind::Text(None)
            }
        }
    )*};
}

text_column!(
    ProvisionedProductId,
    TaskId,
    PlanId,
    WebhookId,
    OperationType,
    TaskStatus,
    ProvisionedProductStatus,
    PlanStatus,
    ConstraintType,
    EventType,
    DeliveryStatus,
    DriftStatus,
    Remediation,
    ScheduleKind,
    UpdatePolicy,
    CampaignId,
    CampaignStatus,
    CampaignItemStatus
);

/// A value to bind (`None`: NULL).
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(Option<String>),
    Int(Option<i64>),
}

/// A value a statement can bind.
pub(crate) trait ToBind {
    /// The value to bind.
    fn to_bind(&self) -> Bind;

    /// NULL of this value's type.
    fn null() -> Bind;
}

impl ToBind for &str {
    fn to_bind(&self) -> Bind {
        Bind::Text(Some(self.to_string()))
    }

    fn null() -> Bind {
        Bind::Text(None)
    }
}

impl ToBind for String {
    fn to_bind(&self) -> Bind {
        Bind::Text(Some(self.clone()))
    }

    fn null() -> Bind {
        Bind::Text(None)
    }
}

impl ToBind for i64 {
    fn to_bind(&self) -> Bind {
        Bind::Int(Some(*self))
    }

    fn null() -> Bind {
        Bind::Int(None)
    }
}

impl ToBind for bool {
    fn to_bind(&self) -> Bind {
        Bind::Int(Some((*self).into()))
    }

    fn null() -> Bind {
        Bind::Int(None)
    }
}

impl<T: ToBind> ToBind for Option<T> {
    fn to_bind(&self) -> Bind {
        self.as_ref().map_or_else(T::null, ToBind::to_bind)
    }

    fn null() -> Bind {
        T::null()
    }
}

impl<T: ToBind> ToBind for &T {
    fn to_bind(&self) -> Bind {
        (**self).to_bind()
    }

    fn null() -> Bind {
        T::null()
    }
}

/// A statement whose text numbers its placeholders (`$1`, `$2`, …), bound to the values in order.
macro_rules! sql {
    ($text:expr $(, $value:expr)* $(,)?) => {
        $crate::store::sql::Sql::bound($text, vec![$($crate::store::sql::ToBind::to_bind(&$value)),*])
    };
}

pub(crate) use sql;

/// Declares a stored record: the struct, its columns in order, its decoding from a row (by
/// column name, whichever database answered), and its values bound in column order. Each column
/// is stated once, as a field. Fields after `joined` are read (from a join, say) but not stored.
macro_rules! record {
    (
        $(#[$meta:meta])* pub struct $name:ident {
            $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)*
        }
        $(joined { $($(#[$jmeta:meta])* pub $jfield:ident: $jty:ty,)* })?
    ) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            $($($(#[$jmeta])* pub $jfield: $jty,)*)?
        }

        impl $name {
            /// The stored columns, in order.
            pub(crate) const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// The stored columns as a select or insert list, each behind `alias` (`""` or `"t."`).
            pub(crate) fn columns(alias: &str) -> String {
                Self::COLUMNS.iter().map(|c| format!("{alias}{c}")).collect::<Vec<_>>().join(", ")
            }

            /// Decodes a row holding every column (and the joined ones).
            pub(crate) fn from_row(row: &$crate::store::read::Row<'_>) -> $crate::store::StoreResult<Self> {
                Ok($name { $($field: row.get(stringify!($field))?,)* $($($jfield: row.get(stringify!($jfield))?,)*)? })
            }

            /// Appends placeholders for the stored columns, in order, bound to their values.
            pub(crate) fn bind_values(&self, sql: &mut $crate::store::sql::Sql) {
                sql.list([$($crate::store::sql::ToBind::to_bind(&self.$field)),*]);
            }
        }
    };
}

pub(crate) use record;

/// SQL text plus its bound values.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Sql { text: text.to_string(), binds: Vec::new() }
    }

    /// A statement whose text already holds its placeholders `$1…$n`, bound to `binds`.
    pub(crate) fn bound(text: &str, binds: Vec<Bind>) -> Self {
        Sql { text: text.to_string(), binds }
    }

    /// Appends raw SQL.
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        // Written in place: a placeholder is the most frequent piece of statement text.
        let _ = write!(self.text, "${}", self.binds.len());
        self
    }

    /// Appends a text placeholder.
    pub(crate) fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.bind(Bind::Text(Some(value.into())))
    }

    /// Appends an integer placeholder.
    pub(crate) fn int(&mut self, value: i64) -> &mut Self {
        self.bind(Bind::Int(Some(value)))
    }

    /// Appends ` LIMIT n OFFSET m` for `page`, in the text, not bound: PostgreSQL's generic plan
    /// of a prepared statement guesses an unknown OFFSET, which priced it above the plan made for
    /// each call's values, so with statistics it planned every call again.
    pub(crate) fn page(&mut self, page: Page) -> &mut Self {
        self.push(&format!(" LIMIT {} OFFSET {}", page.size, page.offset()))
    }

    /// Appends `$i, $i+1, …`, one placeholder per value.
    pub(crate) fn list(&mut self, values: impl IntoIterator<Item = Bind>) -> &mut Self {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self
    }

    /// The statement ready to run.
    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        self.binds.iter().fold(sqlx::query(&self.text), |q, b| match b {
            Bind::Text(t) => q.bind(t.as_deref()),
            Bind::Int(i) => q.bind(*i),
        })
    }

    /// A copy of this statement fragment (with its binds) behind `prefix`, which binds nothing:
    /// one `FROM … WHERE …` serves both the page and its count.
    pub(crate) fn behind(&self, prefix: &str) -> Sql {
        Sql { text: format!("{prefix}{}", self.text), binds: self.binds.clone() }
    }

    /// Runs the statement on `executor`; the rows it changed.
    pub(crate) async fn execute<'c, E: sqlx::Executor<'c, Database = Any>>(&self, executor: E) -> Result<u64, sqlx::Error> {
        Ok(self.query().execute(executor).await?.rows_affected())
    }

    /// The first row, if there is one, decoded, read on `executor`: a transaction, or the writer
    /// to read what it just wrote (other reads go through [`super::Store::fetch_optional`]).
    pub(crate) async fn row<'c, T, E: sqlx::Executor<'c, Database = Any>>(
        &self,
        executor: E,
        decode: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        self.query().fetch_optional(executor).await?.map(|row| decode(&Row::Any(&row))).transpose()
    }

    /// The first column of the first row, if there is one, read on `executor`.
    pub(crate) async fn value<'c, T: Column, E: sqlx::Executor<'c, Database = Any>>(&self, executor: E) -> StoreResult<Option<T>> {
        self.row(executor, |row| row.first()).await
    }

    /// The first column of the one row the statement returns (a count, say), read on `executor`.
    pub(crate) async fn one<'c, T: Column, E: sqlx::Executor<'c, Database = Any>>(&self, executor: E) -> StoreResult<T> {
        self.value(executor).await?.ok_or_else(|| StoreError::Database("the statement returned no row".into()))
    }

    /// The first column of every row, read on `executor`.
    pub(crate) async fn values<'c, T: Column, E: sqlx::Executor<'c, Database = Any>>(&self, executor: E) -> StoreResult<Vec<T>> {
        self.query().fetch_all(executor).await?.iter().map(|row| Row::Any(row).first()).collect()
    }

    /// The SQL text.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The values bound to `$1, $2, …`.
    pub(crate) fn binds(&self) -> &[Bind] {
        &self.binds
    }
}

/// `INSERT INTO table (columns) VALUES (…), (…)`: a row per item of `rows`, `bind` appending its values.
pub(crate) fn insert<T>(table: &str, columns: &[&str], rows: impl IntoIterator<Item = T>, bind: impl Fn(T, &mut Sql)) -> Sql {
    let mut sql = Sql::new(&format!("INSERT INTO {table} ({}) VALUES ", columns.join(", ")));
    for (i, row) in rows.into_iter().enumerate() {
        sql.push(if i == 0 { "(" } else { ", (" });
        bind(row, &mut sql);
        sql.push(")");
    }
    sql
}

/// The conditions a portfolio or product list shares; `None` does not filter.
#[derive(Debug, Clone, Default)]
pub struct NameFilter {
    /// Exact name, compared case-insensitively.
    pub name: Option<String>,
    /// Substring of name, provider or description, case-insensitively.
    pub full_text: Option<String>,
}

impl NameFilter {
    /// Appends the conditions to `sql`, the name being in `name_column`.
    pub(crate) fn push_to(&self, sql: &mut Sql, name_column: &str) {
        if let Some(name) = &self.name {
            sql.push(&format!(" AND LOWER({name_column}) = LOWER(")).text(name.clone()).push(")");
        }
        if let Some(text) = &self.full_text {
            let pattern = contains_pattern(text);
            sql.push(&format!(" AND (LOWER({name_column}) LIKE LOWER(")).text(pattern.clone()).push(") ESCAPE '\\'");
            sql.push(" OR LOWER(provider_name) LIKE LOWER(").text(pattern.clone()).push(") ESCAPE '\\'");
            sql.push(" OR LOWER(description) LIKE LOWER(").text(pattern).push(") ESCAPE '\\')");
        }
    }
}

/// The change of a portfolio's or product's (`kind`) name and provider, and of its description
/// when given.
pub(crate) fn update_named(kind: &str, id: &str, name: &str, provider: &str, description: Option<&str>) -> Sql {
    let text = format!(
        "UPDATE {kind}s SET {kind}_name = $1, provider_name = $2, description = COALESCE($3, description), updated_at = $4 \
         WHERE {kind}_id = $5"
    );
    sql!(&text, name, provider, description, now_ms(), id)
}

/// `%value%` for `LOWER(column) LIKE LOWER(pattern) ESCAPE '\'`, with the caller's wildcards
/// escaped: both sides are folded by the database, so a text is always found as it is written
/// (SQLite's `LOWER` folds ASCII letters only, PostgreSQL's every letter).
pub(crate) fn contains_pattern(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut sql = super::Sql::new("SELECT 1 WHERE a = ");
        sql.text("x").push(" AND b = ").int(2);
        assert_eq!(sql.as_str(), "SELECT 1 WHERE a = $1 AND b = $2");
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(super::contains_pattern("50%_A\\"), "%50\\%\\_A\\\\%");
    }
}
