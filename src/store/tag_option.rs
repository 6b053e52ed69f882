//! Tag options: administrator-defined key/value pairs associated with products and portfolios
//! and applied as tags when products are launched. A key/value pair exists once.

use super::read::Row;
use super::sql::{contains_pattern, sql, Sql};
use super::{Page, SortOrder, Store, StoreResult};

/// A stored tag option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagOption {
    /// `tag-…`.
    pub tag_option_id: String,
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
    /// Inactive options are not applied at launch.
    pub active: bool,
    /// Owning account id.
    pub owner: String,
    /// ms since the epoch.
    pub created_at: i64,
}

/// Which tag options a list returns.
#[derive(Debug, Clone, Default)]
pub struct TagOptionQuery {
    /// Exact key.
    pub key: Option<String>,
    /// Exact value.
    pub value: Option<String>,
    /// Only active (or only inactive) options.
    pub active: Option<bool>,
    /// Substring of key or value, case-insensitively.
    pub full_text: Option<String>,
}

/// The two kinds of resource tag options attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaggedResource {
    /// A product (`prod-…`).
    Product,
    /// A portfolio (`port-…`).
    Portfolio,
}

impl TaggedResource {
    /// The kind of `resource_id`, by its prefix.
    pub fn of_id(resource_id: &str) -> Option<Self> {
        if resource_id.starts_with("prod-") {
            Some(TaggedResource::Product)
        } else if resource_id.starts_with("port-") {
            Some(TaggedResource::Portfolio)
        } else {
            None
        }
    }

    /// The name stored in `tag_option_resources.resource_type`.
    pub fn name(self) -> &'static str {
        match self {
            TaggedResource::Product => "Product",
            TaggedResource::Portfolio => "Portfolio",
        }
    }

    /// (table, id column, name column) of the resource.
    fn table(self) -> (&'static str, &'static str, &'static str) {
        match self {
            TaggedResource::Product => ("products", "product_id", "product_name"),
            TaggedResource::Portfolio => ("portfolios", "portfolio_id", "portfolio_name"),
        }
    }
}

/// A resource a tag option is associated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedResourceDetail {
    /// `prod-…` or `port-…`.
    pub resource_id: String,
    /// Product or portfolio name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// When the resource was created, ms since the epoch.
    pub created_at: i64,
}

/// Outcome of writes that can collide with another option or association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagOptionWrite {
    /// Done.
    Done,
    /// No such tag option.
    NotFound,
    /// Refused; the text says why.
    Conflict(String),
}

const COLUMNS: &str = "tag_option_id, tag_key, tag_value, active, owner, created_at";

fn from_row(row: &Row<'_>) -> StoreResult<TagOption> {
    Ok(TagOption {
        tag_option_id: row.get("tag_option_id")?,
        key: row.get("tag_key")?,
        value: row.get("tag_value")?,
        active: row.get::<i64>("active")? != 0,
        owner: row.get("owner")?,
        created_at: row.get("created_at")?,
    })
}

impl Store {
    /// Stores a new tag option; false when its key/value pair exists already.
    pub async fn insert_tag_option(&self, t: &TagOption) -> StoreResult<bool> {
        super::audit::created(&t.tag_option_id);
        let done = self
            .write(sql!(
                "INSERT INTO tag_options (tag_option_id, tag_key, tag_value, active, owner, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tag_key, tag_value) DO NOTHING",
                &t.tag_option_id,
                &t.key,
                &t.value,
                i64::from(t.active),
                &t.owner,
                t.created_at
            ))
            .await?;
        Ok(done == 1)
    }

    /// One tag option.
    pub async fn tag_option(&self, id: &str) -> StoreResult<Option<TagOption>> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM tag_options WHERE tag_option_id = "));
        sql.text(id);
        self.fetch_optional(&sql, from_row).await
    }

    /// Changes the value and/or the active flag.
    pub async fn update_tag_option(&self, id: &str, value: Option<&str>, active: Option<bool>) -> StoreResult<TagOptionWrite> {
        let mut tx = self.begin().await?;
        let key: Option<String> = sql!("SELECT tag_key FROM tag_options WHERE tag_option_id = $1", id).value(&mut *tx).await?;
        let Some(key) = key else { return Ok(TagOptionWrite::NotFound) };
        if let Some(value) = value {
            let taken: i64 =
                sql!("SELECT COUNT(*) FROM tag_options WHERE tag_key = $1 AND tag_value = $2 AND tag_option_id <> $3", &key, value, id)
                    .one(&mut *tx)
                    .await?;
            if taken > 0 {
                return Ok(TagOptionWrite::Conflict(format!("A tag option with key {key:?} and value {value:?} exists already.")));
            }
        }
        sql!(
            "UPDATE tag_options SET tag_value = COALESCE($1, tag_value), active = COALESCE($2, active) WHERE tag_option_id = $3",
            value,
            active.map(i64::from),
            id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(TagOptionWrite::Done)
    }

    /// Deletes a tag option unless it is associated with a resource.
    pub async fn delete_tag_option(&self, id: &str) -> StoreResult<TagOptionWrite> {
        let mut tx = self.begin().await?;
        let uses: i64 = sql!("SELECT COUNT(*) FROM tag_option_resources WHERE tag_option_id = $1", id).one(&mut *tx).await?;
        if uses > 0 {
            return Ok(TagOptionWrite::Conflict(format!(
                "The tag option {id:?} is associated with {uses} resource(s); disassociate it first."
            )));
        }
        let done = sql!("DELETE FROM tag_options WHERE tag_option_id = $1", id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(if done == 1 { TagOptionWrite::Done } else { TagOptionWrite::NotFound })
    }

    /// One page of tag options by creation time, and the total count.
    pub async fn list_tag_options(&self, query: &TagOptionQuery, order: SortOrder, page: Page) -> StoreResult<(Vec<TagOption>, i64)> {
        let mut filter = Sql::new(" FROM tag_options WHERE 1 = 1");
        if let Some(key) = &query.key {
            filter.push(" AND tag_key = ").text(key.clone());
        }
        if let Some(value) = &query.value {
            filter.push(" AND tag_value = ").text(value.clone());
        }
        if let Some(active) = query.active {
            filter.push(" AND active = ").int(i64::from(active));
        }
        if let Some(text) = &query.full_text {
            let pattern = contains_pattern(text);
            filter.push(" AND (LOWER(tag_key) LIKE LOWER(").text(pattern.clone()).push(") ESCAPE '\\'");
            filter.push(" OR LOWER(tag_value) LIKE LOWER(").text(pattern).push(") ESCAPE '\\')");
        }
        let mut select = filter.behind(&format!("SELECT {COLUMNS}"));
        let dir = order.sql();
        select.push(&format!(" ORDER BY created_at {dir}, tag_option_id {dir}")).page(page);
        self.fetch_page(&select, &filter.behind("SELECT COUNT(*)"), page, from_row).await
    }

    /// Associates a tag option with an existing resource; a resource carries at most one option
    /// per key (their tags are merged at launch). Associating twice is a no-op.
    pub async fn associate_tag_option(&self, tag_option_id: &str, kind: TaggedResource, resource_id: &str) -> StoreResult<TagOptionWrite> {
        let mut tx = self.begin().await?;
        let key: Option<String> = sql!("SELECT tag_key FROM tag_options WHERE tag_option_id = $1", tag_option_id).value(&mut *tx).await?;
        let Some(key) = key else { return Ok(TagOptionWrite::NotFound) };
        let same_key: Option<String> = sql!(
            "SELECT t.tag_option_id FROM tag_option_resources r JOIN tag_options t ON t.tag_option_id = r.tag_option_id \
             WHERE r.resource_id = $1 AND t.tag_key = $2 AND t.tag_option_id <> $3",
            resource_id,
            &key,
            tag_option_id
        )
        .value(&mut *tx)
        .await?;
        if let Some(other) = same_key {
            return Ok(TagOptionWrite::Conflict(format!(
                "The resource {resource_id:?} already has the tag option {other:?} with key {key:?}."
            )));
        }
        sql!(
            "INSERT INTO tag_option_resources (tag_option_id, resource_type, resource_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tag_option_id, resource_id) DO NOTHING",
            tag_option_id,
            kind.name(),
            resource_id,
            super::now_ms()
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(TagOptionWrite::Done)
    }

    /// Removes an association; false when there was none.
    pub async fn disassociate_tag_option(&self, tag_option_id: &str, resource_id: &str) -> StoreResult<bool> {
        let done = self
            .write(sql!("DELETE FROM tag_option_resources WHERE tag_option_id = $1 AND resource_id = $2", tag_option_id, resource_id))
            .await?;
        Ok(done == 1)
    }

    /// One page of the resources of one kind a tag option is associated with, oldest association
    /// first, and the total count.
    pub async fn tag_option_resources(
        &self,
        tag_option_id: &str,
        kind: TaggedResource,
        page: Page,
    ) -> StoreResult<(Vec<TaggedResourceDetail>, i64)> {
        let (table, id, name) = kind.table();
        let mut filter =
            Sql::new(&format!(" FROM tag_option_resources r JOIN {table} x ON x.{id} = r.resource_id WHERE r.tag_option_id = "));
        filter.text(tag_option_id);
        let mut select = filter.behind(&format!("SELECT x.{id} AS resource_id, x.{name} AS name, x.description, x.created_at"));
        select.push(" ORDER BY r.created_at, r.resource_id").page(page);
        self.fetch_page(&select, &filter.behind("SELECT COUNT(*)"), page, |row| {
            Ok(TaggedResourceDetail {
                resource_id: row.get("resource_id")?,
                name: row.get("name")?,
                description: row.get("description")?,
                created_at: row.get("created_at")?,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn option(id: &str, key: &str, value: &str, at: i64) -> TagOption {
        TagOption { tag_option_id: id.into(), key: key.into(), value: value.into(), active: true, owner: "1".into(), created_at: at }
    }

    #[tokio::test]
    async fn tag_options_are_unique_filtered_associated_and_guarded() {
        testing::each_store(|store| async move {
            assert!(store.insert_tag_option(&option("tag-1", "env", "dev", 1)).await.unwrap());
            assert!(!store.insert_tag_option(&option("tag-x", "env", "dev", 2)).await.unwrap());
            assert!(store.insert_tag_option(&option("tag-2", "env", "prod", 2)).await.unwrap());
            assert!(store.insert_tag_option(&option("tag-3", "team", "Core", 3)).await.unwrap());

            let page = Page { number: 1, size: 10 };
            let list = |q: TagOptionQuery| {
                let store = store.clone();
                async move { store.list_tag_options(&q, SortOrder::Asc, page).await.unwrap() }
            };
            assert_eq!(list(TagOptionQuery::default()).await.1, 3);
            let (found, total) = list(TagOptionQuery { key: Some("env".into()), ..Default::default() }).await;
            assert_eq!((found[0].tag_option_id.as_str(), total), ("tag-1", 2));
            assert_eq!(list(TagOptionQuery { full_text: Some("COR".into()), ..Default::default() }).await.1, 1);

            assert_eq!(
                store.update_tag_option("tag-2", Some("dev"), None).await.unwrap(),
                TagOptionWrite::Conflict("A tag option with key \"env\" and value \"dev\" exists already.".into())
            );
            assert_eq!(store.update_tag_option("tag-2", Some("stage"), Some(false)).await.unwrap(), TagOptionWrite::Done);
            let t = store.tag_option("tag-2").await.unwrap().unwrap();
            assert_eq!((t.value.as_str(), t.active), ("stage", false));
            assert_eq!(list(TagOptionQuery { active: Some(false), ..Default::default() }).await.1, 1);
            assert_eq!(store.update_tag_option("tag-9", None, Some(true)).await.unwrap(), TagOptionWrite::NotFound);

            sql!("INSERT INTO portfolios (portfolio_id, portfolio_name, provider_name, description, created_at, updated_at) VALUES ('port-1', 'P', 'p', 'd', 7, 7)").execute(store.writer())
                .await
                .unwrap();
            let port = TaggedResource::Portfolio;
            assert_eq!(store.associate_tag_option("tag-1", port, "port-1").await.unwrap(), TagOptionWrite::Done);
            assert_eq!(store.associate_tag_option("tag-1", port, "port-1").await.unwrap(), TagOptionWrite::Done);
            assert!(matches!(store.associate_tag_option("tag-2", port, "port-1").await.unwrap(), TagOptionWrite::Conflict(_)));
            assert_eq!(store.associate_tag_option("tag-9", port, "port-1").await.unwrap(), TagOptionWrite::NotFound);
            let (resources, total) = store.tag_option_resources("tag-1", port, page).await.unwrap();
            assert_eq!((resources[0].name.as_str(), resources[0].created_at, total), ("P", 7, 1));
            assert_eq!(store.tag_option_resources("tag-1", TaggedResource::Product, page).await.unwrap().1, 0);
            assert!(matches!(store.delete_tag_option("tag-1").await.unwrap(), TagOptionWrite::Conflict(_)));
            assert!(store.disassociate_tag_option("tag-1", "port-1").await.unwrap());
            assert!(!store.disassociate_tag_option("tag-1", "port-1").await.unwrap());
            assert_eq!(store.delete_tag_option("tag-1").await.unwrap(), TagOptionWrite::Done);
            assert_eq!(store.delete_tag_option("tag-1").await.unwrap(), TagOptionWrite::NotFound);
            assert_eq!(TaggedResource::of_id("prod-x"), Some(TaggedResource::Product));
            assert_eq!(TaggedResource::of_id("x-1"), None);
        })
        .await;
    }
}
