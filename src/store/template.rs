//! Uploaded templates, stored content-addressed: the same type, body and `TerraformVariables`
//! always resolve to the same row (and so the same `TemplateUrl`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::sql::{sql, Sql};
use super::{new_id, now_ms, Store, StoreError, StoreResult};

/// A `TerraformVariables` entry: a description the administrator gives a declared variable.
/// The description is plain text or a JSON object with `Label`, `Description`, `AllowedValues`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TerraformVariable {
    /// Name of a `variable` block.
    pub variable_name: String,
    /// Description (text or JSON object).
    #[serde(default)]
    pub description: String,
}

/// A stored template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTemplate {
    /// `tpl-…`.
    pub template_id: String,
    /// `RosTerraformTemplate` or `RosStandardTemplate`.
    pub template_type: String,
    /// The body as uploaded.
    pub body: String,
    /// The descriptions given with it.
    pub terraform_variables: Vec<TerraformVariable>,
    /// ms since the epoch.
    pub created_at: i64,
}

/// The content address: sha256 over type, body and variables, each length-prefixed.
fn content_sha256(template_type: &str, body: &str, variables_json: &str) -> String {
    let mut hash = Sha256::new();
    for part in [template_type, body, variables_json] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

impl Store {
    /// Stores a template unless the same content is stored already; returns its id either way.
    pub async fn put_template(&self, template_type: &str, body: &str, variables: &[TerraformVariable]) -> StoreResult<String> {
        let variables_json = serde_json::to_string(variables).expect("variables serialise");
        let sha = content_sha256(template_type, body, &variables_json);
        self.write(sql!(
            "INSERT INTO templates (template_id, content_sha256, template_type, body, terraform_variables, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (content_sha256) DO NOTHING",
            new_id("tpl"),
            &sha,
            template_type,
            body,
            &variables_json,
            now_ms()
        ))
        .await?;
        sql!("SELECT template_id FROM templates WHERE content_sha256 = $1", &sha).one(self.writer()).await
    }

    /// One template.
    pub async fn template(&self, template_id: &str) -> StoreResult<Option<StoredTemplate>> {
        let mut sql =
            Sql::new("SELECT template_id, template_type, body, terraform_variables, created_at FROM templates WHERE template_id = ");
        sql.text(template_id);
        self.fetch_optional(&sql, |row| {
            let variables: String = row.get("terraform_variables")?;
            Ok(StoredTemplate {
                template_id: row.get("template_id")?,
                template_type: row.get("template_type")?,
                body: row.get("body")?,
                terraform_variables: serde_json::from_str(&variables)
                    .map_err(|e| StoreError::Database(format!("templates.terraform_variables: {e}").into()))?,
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

    #[tokio::test]
    async fn templates_are_content_addressed() {
        testing::each_store(|store| async move {
            let vars = [TerraformVariable { variable_name: "a".into(), description: "d".into() }];
            let first = store.put_template("RosTerraformTemplate", "{}", &vars).await.unwrap();
            assert_eq!(store.put_template("RosTerraformTemplate", "{}", &vars).await.unwrap(), first);
            assert_ne!(store.put_template("RosTerraformTemplate", "{}", &[]).await.unwrap(), first);
            assert_ne!(store.put_template("RosStandardTemplate", "{}", &vars).await.unwrap(), first);
            let stored = store.template(&first).await.unwrap().unwrap();
            assert_eq!((stored.body.as_str(), stored.terraform_variables.as_slice()), ("{}", &vars[..]));
            assert!(first.starts_with("tpl-"));
            assert!(store.template("tpl-none").await.unwrap().is_none());
        })
        .await;
    }
}
