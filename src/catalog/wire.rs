//! Wire shapes every list action shares: paging asked for and answered, `Filters` entries, and
//! the API's time format.

use serde::{Deserialize, Serialize};

pub use crate::model::format_time;
use crate::store::{NameFilter, Page, SortOrder};

/// Paging and sorting parameters shared by list actions (defaults come from the spec).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Paging {
    #[serde(default = "first_page")]
    pub page_number: i64,
    #[serde(default = "default_page_size")]
    pub page_size: i64,
    pub sort_order: Option<String>,
}

fn first_page() -> i64 {
    1
}

fn default_page_size() -> i64 {
    10
}

impl Paging {
    /// Page `number` of `size` rows, newest first.
    pub fn new(number: i64, size: i64) -> Paging {
        Paging { page_number: number, page_size: size, sort_order: None }
    }

    /// The page asked for.
    pub fn page(&self) -> Page {
        Page { number: self.page_number, size: self.page_size }
    }

    /// The order asked for (newest first unless `Asc`).
    pub fn order(&self) -> SortOrder {
        match self.sort_order.as_deref() {
            Some("Asc") => SortOrder::Asc,
            _ => SortOrder::Desc,
        }
    }

    /// The paging fields of a list answer.
    pub fn answer(&self, total: i64) -> Paged {
        Paged { page_number: self.page_number, page_size: self.page_size, total_count: total }
    }
}

/// The paging fields of a list answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Paged {
    pub page_number: i64,
    pub page_size: i64,
    pub total_count: i64,
}

/// A `Filters` entry of list actions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    pub key: Option<String>,
    pub value: Option<String>,
}

impl Filter {
    /// The `FullTextSearch` filter for `text`, none when it is empty.
    pub fn full_text(text: &str) -> Vec<Filter> {
        match text {
            "" => Vec::new(),
            text => vec![Filter { key: Some("FullTextSearch".into()), value: Some(text.into()) }],
        }
    }
}

/// The store's name conditions of `filters`: the exact name under `name_key`, and `FullTextSearch`.
pub fn name_filter(filters: &[Filter], name_key: &str) -> NameFilter {
    NameFilter { name: filter_value(filters, name_key), full_text: filter_value(filters, "FullTextSearch") }
}

/// The value of the last filter named `key`.
pub fn filter_value(filters: &[Filter], key: &str) -> Option<String> {
    filters.iter().rev().find(|f| f.key.as_deref() == Some(key)).and_then(|f| f.value.clone())
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_whole_utc_seconds_with_z() {
        assert_eq!(super::format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format_time(1_764_432_812_999), "2025-11-29T16:13:32Z");
    }
}
