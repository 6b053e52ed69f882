//! Launch roles: named sets of environment variables (provider credentials) that a `Launch`
//! constraint hands to Terraform. The variables are stored sealed (a JSON object sealed with
//! the master key); only their names ever leave the store in clear. The engine reads them with
//! `Store::launch_role_env_sealed` (beside the task queue).

use super::sql::{sql, Sql};
use super::{now_ms, Store, StoreResult};

/// A stored launch role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRole {
    /// Role name (`LocalRoleName` of a Launch constraint).
    pub name: String,
    /// The variables, a JSON object of strings sealed with the master key.
    pub env_sealed: String,
    /// ms since the epoch.
    pub created_at: i64,
}

impl Store {
    /// Creates or replaces the launch role `name` with its sealed variables.
    pub async fn put_launch_role(&self, name: &str, env_sealed: &str) -> StoreResult<()> {
        self.write(sql!(
            "INSERT INTO launch_roles (role_name, env_sealed, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (role_name) DO UPDATE SET env_sealed = excluded.env_sealed, updated_at = excluded.updated_at",
            name,
            env_sealed,
            now_ms()
        ))
        .await?;
        Ok(())
    }

    /// Launch roles by name.
    pub async fn list_launch_roles(&self) -> StoreResult<Vec<LaunchRole>> {
        let sql = Sql::new("SELECT role_name, env_sealed, created_at FROM launch_roles ORDER BY role_name");
        self.fetch_all(&sql, |r| {
            Ok(LaunchRole { name: r.get("role_name")?, env_sealed: r.get("env_sealed")?, created_at: r.get("created_at")? })
        })
        .await
    }

    /// Whether the launch role `name` exists.
    pub async fn launch_role_exists(&self, name: &str) -> StoreResult<bool> {
        Ok(self.launch_role_env_sealed(name).await?.is_some())
    }

    /// Deletes the launch role `name`; false when not found.
    pub async fn delete_launch_role(&self, name: &str) -> StoreResult<bool> {
        let done = self.write(sql!("DELETE FROM launch_roles WHERE role_name = $1", name)).await?;
        Ok(done == 1)
    }
}
