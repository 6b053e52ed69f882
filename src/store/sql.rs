//! A small builder for statements whose WHERE clause depends on the request: it numbers
//! placeholders `$1, $2, …` in order of appearance, which both SQLite and PostgreSQL accept
//! (sqlx's own builder writes `?` for the `Any` driver, which PostgreSQL refuses).

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

/// A value to bind.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

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

    /// Appends raw SQL.
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        self.text.push_str(&format!("${}", self.binds.len()));
        self
    }

    /// Appends a text placeholder.
    pub(crate) fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.bind(Bind::Text(value.into()))
    }

    /// Appends an integer placeholder.
    pub(crate) fn int(&mut self, value: i64) -> &mut Self {
        self.bind(Bind::Int(value))
    }

    /// The statement ready to run.
    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        self.binds.iter().fold(sqlx::query(&self.text), |q, b| match b {
            Bind::Text(t) => q.bind(t.as_str()),
            Bind::Int(i) => q.bind(*i),
        })
    }

    /// A copy of this statement fragment (with its binds) behind `prefix`, which binds nothing:
    /// one `FROM … WHERE …` serves both the page and its count.
    pub(crate) fn behind(&self, prefix: &str) -> Sql {
        Sql { text: format!("{prefix}{}", self.text), binds: self.binds.clone() }
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

/// `%value%` for a case-insensitive `LIKE … ESCAPE '\'`, with the caller's wildcards escaped.
pub(crate) fn contains_pattern(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{}%", escaped.to_lowercase())
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
        assert_eq!(super::contains_pattern("50%_A\\"), "%50\\%\\_a\\\\%");
    }
}
