//! Principals (RAM users and roles of this installation) and the AccessKeys of users.

use super::read::Row;
use super::sql::{sql, Sql};
use super::{now_ms, Store, StoreResult};

/// Principal type as the API names it.
pub const RAM_USER: &str = "RamUser";

/// The administrator created at first start (or from the environment).
pub const ROOT_USER_NAME: &str = "root";

/// A user or role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Numeric id, as RAM ids are.
    pub principal_id: String,
    /// `RamUser` or `RamRole`.
    pub principal_type: String,
    /// Unique name within its type.
    pub name: String,
    /// Administrators may call every action.
    pub is_admin: bool,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
}

pub(super) fn principal_from_row(row: &Row<'_>) -> StoreResult<Principal> {
    Ok(Principal {
        principal_id: row.get("principal_id")?,
        principal_type: row.get("principal_type")?,
        name: row.get("name")?,
        is_admin: row.get::<i64>("is_admin")? != 0,
        created_at: row.get("created_at")?,
    })
}

/// A new numeric principal id (16 digits, not starting with 0).
pub fn new_principal_id() -> String {
    use rand::Rng;
    rand::thread_rng().gen_range(1_000_000_000_000_000u64..10_000_000_000_000_000).to_string()
}

impl Store {
    /// [`Store::access_key`], from the database.
    pub(super) async fn read_access_key(&self, access_key_id: &str) -> StoreResult<Option<(Principal, String)>> {
        let mut sql = Sql::new(
            "SELECT p.principal_id, p.principal_type, p.name, p.is_admin, p.created_at, k.secret_sealed \
             FROM access_keys k JOIN principals p ON p.principal_id = k.principal_id WHERE k.access_key_id = ",
        );
        sql.text(access_key_id);
        self.fetch_optional(&sql, |row| Ok((principal_from_row(row)?, row.get("secret_sealed")?))).await
    }

    /// Creates a user with one AccessKey; `None` when the name is taken.
    pub async fn create_user(
        &self,
        name: &str,
        is_admin: bool,
        access_key_id: &str,
        secret_sealed: &str,
    ) -> StoreResult<Option<Principal>> {
        let principal = Principal {
            principal_id: new_principal_id(),
            principal_type: RAM_USER.to_string(),
            name: name.to_string(),
            is_admin,
            created_at: now_ms(),
        };
        let mut tx = self.begin().await?;
        let inserted = sql!(
            "INSERT INTO principals (principal_id, principal_type, name, is_admin, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (principal_type, name) DO NOTHING",
            &principal.principal_id,
            &principal.principal_type,
            &principal.name,
            i64::from(is_admin),
            principal.created_at
        )
        .execute(&mut *tx)
        .await?;
        if inserted == 0 {
            return Ok(None);
        }
        insert_key(&mut tx, access_key_id, &principal.principal_id, secret_sealed).await?;
        self.commit_auth_change(tx).await?;
        Ok(Some(principal))
    }

    /// Users, oldest first.
    pub async fn list_users(&self) -> StoreResult<Vec<(Principal, Vec<String>)>> {
        let mut sql = Sql::new(
            "SELECT p.principal_id, p.principal_type, p.name, p.is_admin, p.created_at, k.access_key_id \
             FROM principals p LEFT JOIN access_keys k ON k.principal_id = p.principal_id WHERE p.principal_type = ",
        );
        sql.text(RAM_USER).push(" ORDER BY p.created_at, p.principal_id, k.access_key_id");
        let rows = self.fetch_all(&sql, |row| Ok((principal_from_row(row)?, row.get::<Option<String>>("access_key_id")?))).await?;
        let mut users: Vec<(Principal, Vec<String>)> = Vec::new();
        for (principal, key) in rows {
            match users.last_mut() {
                Some((last, keys)) if last.principal_id == principal.principal_id => keys.extend(key),
                _ => users.push((principal, key.into_iter().collect())),
            }
        }
        Ok(users)
    }

    /// Deletes a user, its keys, role memberships and the portfolio grants naming it; false when
    /// there is no such user.
    pub async fn delete_user(&self, name: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let id: Option<String> =
            sql!("SELECT principal_id FROM principals WHERE principal_type = $1 AND name = $2", RAM_USER, name).value(&mut *tx).await?;
        let Some(id) = id else { return Ok(false) };
        sql!("DELETE FROM access_keys WHERE principal_id = $1", &id).execute(&mut *tx).await?;
        sql!("DELETE FROM role_members WHERE user_id = $1", &id).execute(&mut *tx).await?;
        sql!("DELETE FROM portfolio_principals WHERE principal_type = $1 AND principal_key = $2 AND is_pattern = 0", RAM_USER, &id)
            .execute(&mut *tx)
            .await?;
        sql!("DELETE FROM principals WHERE principal_id = $1", &id).execute(&mut *tx).await?;
        self.commit_auth_change(tx).await?;
        Ok(true)
    }

    /// The root administrator's AccessKey ids.
    pub async fn root_access_keys(&self) -> StoreResult<Vec<String>> {
        let mut sql = Sql::new(
            "SELECT k.access_key_id FROM access_keys k JOIN principals p ON p.principal_id = k.principal_id WHERE p.principal_type = ",
        );
        sql.text(RAM_USER).push(" AND p.name = ").text(ROOT_USER_NAME);
        self.fetch_all(&sql, |row| row.first()).await
    }

    /// Makes `access_key_id` the root administrator's only key, creating root if needed.
    pub async fn replace_root_key(&self, access_key_id: &str, secret_sealed: &str) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        set_root_key(&mut tx, access_key_id, secret_sealed).await?;
        self.commit_auth_change(tx).await?;
        Ok(())
    }

    /// Makes a generated key the root administrator's unless a key was generated before: the
    /// claim (setting `root_key_generated`) and the key are one transaction, so of the nodes
    /// that start together on one database exactly one wins. False (nothing written) when lost.
    pub async fn claim_generated_root_key(&self, access_key_id: &str, secret_sealed: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let claimed =
            sql!("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", "root_key_generated", access_key_id)
                .execute(&mut *tx)
                .await?;
        if claimed != 1 {
            return Ok(false);
        }
        set_root_key(&mut tx, access_key_id, secret_sealed).await?;
        self.commit_auth_change(tx).await?;
        Ok(true)
    }
}

async fn set_root_key(tx: &mut super::Tx, access_key_id: &str, secret_sealed: &str) -> StoreResult<()> {
    sql!(
        "INSERT INTO principals (principal_id, principal_type, name, is_admin, created_at) VALUES ($1, $2, $3, 1, $4) \
         ON CONFLICT (principal_type, name) DO UPDATE SET is_admin = 1",
        new_principal_id(),
        RAM_USER,
        ROOT_USER_NAME,
        now_ms()
    )
    .execute(&mut **tx)
    .await?;
    let root_id: String = sql!("SELECT principal_id FROM principals WHERE principal_type = $1 AND name = $2", RAM_USER, ROOT_USER_NAME)
        .one(&mut **tx)
        .await?;
    sql!("DELETE FROM access_keys WHERE principal_id = $1 OR access_key_id = $2", &root_id, access_key_id).execute(&mut **tx).await?;
    insert_key(tx, access_key_id, &root_id, secret_sealed).await?;
    Ok(())
}

async fn insert_key(tx: &mut super::Tx, access_key_id: &str, principal_id: &str, secret_sealed: &str) -> StoreResult<()> {
    sql!(
        "INSERT INTO access_keys (access_key_id, principal_id, secret_sealed, created_at) VALUES ($1, $2, $3, $4)",
        access_key_id,
        principal_id,
        secret_sealed,
        now_ms()
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::testing;

    #[tokio::test]
    async fn users_are_created_listed_found_and_deleted() {
        testing::each_store(|store| async move {
            let alice = store.create_user("alice", false, "AK1", "sealed1").await.unwrap().unwrap();
            assert!(store.create_user("alice", true, "AK2", "sealed2").await.unwrap().is_none());
            let (found, sealed) = store.access_key("AK1").await.unwrap().unwrap();
            assert_eq!(found, alice);
            assert_eq!(sealed, "sealed1");
            assert!(store.access_key("AK2").await.unwrap().is_none());
            assert_eq!(store.list_users().await.unwrap()[0].1, ["AK1"]);
            assert!(store.delete_user("alice").await.unwrap());
            assert!(!store.delete_user("alice").await.unwrap());
            assert!(store.access_key("AK1").await.unwrap().is_none());
        })
        .await;
    }

    #[tokio::test]
    async fn the_root_key_is_replaced_not_added() {
        testing::each_store(|store| async move {
            store.replace_root_key("R1", "s1").await.unwrap();
            store.replace_root_key("R2", "s2").await.unwrap();
            assert_eq!(store.root_access_keys().await.unwrap(), ["R2"]);
            let (root, _) = store.access_key("R2").await.unwrap().unwrap();
            assert!(root.is_admin);
        })
        .await;
    }

    #[tokio::test]
    async fn only_the_first_generated_root_key_is_kept() {
        testing::each_store(|store| async move {
            assert!(store.claim_generated_root_key("G1", "s1").await.unwrap());
            assert!(!store.claim_generated_root_key("G2", "s2").await.unwrap());
            assert_eq!(store.root_access_keys().await.unwrap(), ["G1"]);
        })
        .await;
    }
}
