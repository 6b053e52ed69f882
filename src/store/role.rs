//! RAM roles of this installation: principals of type `RamRole` that users are members of
//! (table `role_members`). Portfolios granted to a role are granted to its members.

use super::grant::RAM_ROLE;
use super::principal::{new_principal_id, principal_from_row, Principal};
use super::sql::{sql, Sql};
use super::{now_ms, Store, StoreResult};

/// A role and the names of its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Numeric principal id.
    pub role_id: String,
    /// Unique role name.
    pub name: String,
    /// Member user names, sorted.
    pub members: Vec<String>,
    /// ms since the epoch.
    pub created_at: i64,
}

/// Inserts the role `name` unless it exists; returns whether it was created.
async fn insert_role(tx: &mut super::Tx, name: &str) -> StoreResult<bool> {
    let done = sql!(
        "INSERT INTO principals (principal_id, principal_type, name, is_admin, created_at) VALUES ($1, $2, $3, 0, $4) \
         ON CONFLICT (principal_type, name) DO NOTHING",
        new_principal_id(),
        RAM_ROLE,
        name,
        now_ms()
    )
    .execute(&mut **tx)
    .await?;
    Ok(done == 1)
}

impl Store {
    /// Creates the role `name`; false when it exists already.
    pub async fn create_role(&self, name: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let created = insert_role(&mut tx, name).await?;
        self.commit_auth_change(tx).await?;
        Ok(created)
    }

    /// Makes user `user_id` a member of each role in `roles`, creating the roles that do not exist.
    pub async fn add_user_to_roles(&self, user_id: &str, roles: &[String]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for name in roles {
            insert_role(&mut tx, name).await?;
            sql!(
                "INSERT INTO role_members (role_id, user_id) \
                 SELECT principal_id, $1 FROM principals WHERE principal_type = $2 AND name = $3 \
                 ON CONFLICT (role_id, user_id) DO NOTHING",
                user_id,
                RAM_ROLE,
                name
            )
            .execute(&mut *tx)
            .await?;
        }
        self.commit_auth_change(tx).await?;
        Ok(())
    }

    /// Ends user `user_id`'s membership of the role `role`; false when it was not a member.
    pub async fn remove_user_from_role(&self, user_id: &str, role: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let removed = sql!(
            "DELETE FROM role_members WHERE user_id = $1 AND role_id IN \
             (SELECT principal_id FROM principals WHERE principal_type = $2 AND name = $3)",
            user_id,
            RAM_ROLE,
            role
        )
        .execute(&mut *tx)
        .await?;
        self.commit_auth_change(tx).await?;
        Ok(removed > 0)
    }

    /// Roles with their members, oldest first.
    pub async fn list_roles(&self) -> StoreResult<Vec<Role>> {
        let mut sql = Sql::new(
            "SELECT r.principal_id, r.name, r.created_at, u.name AS member FROM principals r \
             LEFT JOIN role_members m ON m.role_id = r.principal_id \
             LEFT JOIN principals u ON u.principal_id = m.user_id WHERE r.principal_type = ",
        );
        sql.text(RAM_ROLE).push(" ORDER BY r.created_at, r.principal_id, u.name");
        let mut roles: Vec<Role> = Vec::new();
        self.fetch_all(&sql, |row| {
            let role_id: String = row.get("principal_id")?;
            let member: Option<String> = row.get("member")?;
            match roles.last_mut() {
                Some(last) if last.role_id == role_id => last.members.extend(member),
                _ => roles.push(Role {
                    role_id,
                    name: row.get("name")?,
                    members: member.into_iter().collect(),
                    created_at: row.get("created_at")?,
                }),
            }
            Ok(())
        })
        .await?;
        Ok(roles)
    }

    /// Deletes a role, its memberships and the portfolio grants naming it; false when not found.
    pub async fn delete_role(&self, name: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let id: Option<String> =
            sql!("SELECT principal_id FROM principals WHERE principal_type = $1 AND name = $2", RAM_ROLE, name).value(&mut *tx).await?;
        let Some(id) = id else { return Ok(false) };
        sql!("DELETE FROM role_members WHERE role_id = $1", &id).execute(&mut *tx).await?;
        sql!("DELETE FROM portfolio_principals WHERE principal_type = $1 AND principal_key = $2 AND is_pattern = 0", RAM_ROLE, &id)
            .execute(&mut *tx)
            .await?;
        sql!("DELETE FROM principals WHERE principal_id = $1", &id).execute(&mut *tx).await?;
        self.commit_auth_change(tx).await?;
        Ok(true)
    }

    /// The principal with this id and type (`RamUser` or `RamRole`).
    pub async fn principal_by_id(&self, principal_type: &str, id: &str) -> StoreResult<Option<Principal>> {
        let mut sql = Sql::new("SELECT principal_id, principal_type, name, is_admin, created_at FROM principals WHERE principal_id = ");
        sql.text(id).push(" AND principal_type = ").text(principal_type);
        self.fetch_optional(&sql, principal_from_row).await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::grant::Grant;
    use crate::store::sql::Sql;
    use crate::store::testing;

    #[tokio::test]
    async fn roles_are_created_joined_listed_and_deleted() {
        testing::each_store(|store| async move {
            assert!(store.create_role("ops").await.unwrap());
            assert!(!store.create_role("ops").await.unwrap());
            let alice = store.create_user("alice", false, "AK1", "s").await.unwrap().unwrap();
            store.add_user_to_roles(&alice.principal_id, &["ops".into(), "dev".into(), "ops".into()]).await.unwrap();
            let roles = store.list_roles().await.unwrap();
            assert_eq!(
                roles.iter().map(|r| (r.name.as_str(), r.members.clone())).collect::<Vec<_>>(),
                [("ops", vec!["alice".to_string()]), ("dev", vec!["alice".to_string()])]
            );
            let ops = &roles[0];
            let found = store.principal_by_id("RamRole", &ops.role_id).await.unwrap().unwrap();
            assert_eq!(found.name, "ops");
            assert!(store.principal_by_id("RamUser", &ops.role_id).await.unwrap().is_none());
            assert_eq!(store.roles_of(&alice.principal_id).await.unwrap().len(), 2);
            assert!(store.delete_role("ops").await.unwrap());
            assert!(!store.delete_role("ops").await.unwrap());
            assert_eq!(store.roles_of(&alice.principal_id).await.unwrap()[0].name, "dev");

            // Deleting a user drops its memberships and the grants naming it.
            let portfolio = "INSERT INTO portfolios (portfolio_id, portfolio_name, provider_name, description, created_at, updated_at) \
                             VALUES ('port-1', 'p', 'p', '', 1, 1)";
            Sql::new(portfolio).execute(store.writer()).await.unwrap();
            let grant = Grant { principal_type: "RamUser".into(), principal_key: alice.principal_id.clone(), is_pattern: false };
            store.insert_grant("port-1", &grant).await.unwrap();
            assert!(store.delete_user("alice").await.unwrap());
            assert!(store.grants_of("port-1").await.unwrap().is_empty());
            assert!(store.list_roles().await.unwrap()[0].members.is_empty());
        })
        .await;
    }
}
