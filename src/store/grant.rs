//! Grants: which portfolios a principal may use. A portfolio is granted to a user directly (its
//! id), through a role it is a member of (the role's id), or by a name pattern with `*`
//! wildcards matching the user's name (`RamUser` patterns) or one of its roles' names (`RamRole`
//! patterns). This is the one place that resolves them; end-user checks and the engine call it.

use std::collections::BTreeSet;

use super::principal::{Principal, RAM_USER};
use super::sql::{sql, Sql};
use super::{now_ms, Store, StoreResult};

/// Principal type of roles as the API names it.
pub const RAM_ROLE: &str = "RamRole";

/// Whether `name` matches `pattern`, where `*` stands for any run of characters (also none) and
/// every other character for itself, case-sensitively as RAM names are.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Greedy matching with backtracking to the last `*`: linear in practice, no recursion.
    let (mut pi, mut ni) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            resume = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((star, from)) = resume {
            pi = star + 1;
            ni = from + 1;
            resume = Some((star, from + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A role as seen from its members: id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRef {
    /// Numeric principal id.
    pub role_id: String,
    /// Role name.
    pub name: String,
}

/// One grant of a portfolio, as `ListPrincipals` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `RamUser` or `RamRole`.
    pub principal_type: String,
    /// A principal id, or a name pattern when `is_pattern`.
    pub principal_key: String,
    /// Whether `principal_key` is a `*` pattern.
    pub is_pattern: bool,
}

impl Store {
    /// Grants `portfolio_id`; false when that grant exists already.
    pub async fn insert_grant(&self, portfolio_id: &str, grant: &Grant) -> StoreResult<bool> {
        let done = self
            .write(sql!(
                "INSERT INTO portfolio_principals (portfolio_id, principal_type, principal_key, is_pattern, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (portfolio_id, principal_type, principal_key, is_pattern) DO NOTHING",
                portfolio_id,
                &grant.principal_type,
                &grant.principal_key,
                i64::from(grant.is_pattern),
                now_ms()
            ))
            .await?;
        self.auth_cache.forget();
        Ok(done == 1)
    }

    /// Revokes a grant of `portfolio_id`; false when there was no such grant.
    pub async fn delete_grant(&self, portfolio_id: &str, grant: &Grant) -> StoreResult<bool> {
        let done = self
            .write(sql!(
            "DELETE FROM portfolio_principals WHERE portfolio_id = $1 AND principal_type = $2 AND principal_key = $3 AND is_pattern = $4",
            portfolio_id,
            &grant.principal_type,
            &grant.principal_key,
            i64::from(grant.is_pattern)
        ))
            .await?;
        self.auth_cache.forget();
        Ok(done == 1)
    }

    /// The grants of `portfolio_id`, oldest first.
    pub async fn grants_of(&self, portfolio_id: &str) -> StoreResult<Vec<Grant>> {
        let mut sql = Sql::new("SELECT principal_type, principal_key, is_pattern FROM portfolio_principals WHERE portfolio_id = ");
        sql.text(portfolio_id).push(" ORDER BY created_at, principal_type, principal_key");
        self.fetch_all(&sql, |row| {
            Ok(Grant {
                principal_type: row.get("principal_type")?,
                principal_key: row.get("principal_key")?,
                is_pattern: row.get::<i64>("is_pattern")? != 0,
            })
        })
        .await
    }

    /// The roles `user_id` is a member of, by name.
    pub async fn roles_of(&self, user_id: &str) -> StoreResult<Vec<RoleRef>> {
        let mut sql = Sql::new(
            "SELECT p.principal_id, p.name FROM role_members m JOIN principals p ON p.principal_id = m.role_id WHERE m.user_id = ",
        );
        sql.text(user_id).push(" AND p.principal_type = ").text(RAM_ROLE).push(" ORDER BY p.name");
        self.fetch_all(&sql, |row| Ok(RoleRef { role_id: row.get("principal_id")?, name: row.get("name")? })).await
    }

    /// [`Store::portfolios_granted_to`], from the database.
    pub(super) async fn read_portfolios_granted_to(&self, principal: &Principal) -> StoreResult<Vec<String>> {
        let mut users: Vec<(&str, &str)> = Vec::new();
        let mut roles: Vec<RoleRef> = Vec::new();
        if principal.principal_type == RAM_USER {
            users.push((&principal.principal_id, &principal.name));
            roles = self.roles_of(&principal.principal_id).await?;
        } else {
            roles.push(RoleRef { role_id: principal.principal_id.clone(), name: principal.name.clone() });
        }
        let mut granted = BTreeSet::new();
        let all = Sql::new("SELECT portfolio_id, principal_type, principal_key, is_pattern FROM portfolio_principals");
        self.fetch_all(&all, |row| {
            let (kind, key): (String, String) = (row.get("principal_type")?, row.get("principal_key")?);
            let is_pattern = row.get::<i64>("is_pattern")? != 0;
            let matches = match kind.as_str() {
                RAM_USER => users.iter().any(|(id, name)| if is_pattern { pattern_matches(&key, name) } else { key == *id }),
                RAM_ROLE => roles.iter().any(|r| if is_pattern { pattern_matches(&key, &r.name) } else { key == r.role_id }),
                _ => false,
            };
            if matches {
                granted.insert(row.get::<String>("portfolio_id")?);
            }
            Ok(())
        })
        .await?;
        Ok(granted.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[test]
    fn wildcards_match_any_run_of_characters() {
        assert!(pattern_matches("dev-*", "dev-alice"));
        assert!(pattern_matches("dev-*", "dev-"));
        assert!(pattern_matches("*", ""));
        assert!(pattern_matches("*-ops-*", "team-ops-1"));
        assert!(pattern_matches("a*b*c", "aXbYbZc"));
        assert!(pattern_matches("alice", "alice"));
        assert!(!pattern_matches("alice", "alice2"));
        assert!(!pattern_matches("dev-*", "Dev-alice"));
        assert!(!pattern_matches("a*b", "acbx"));
        assert!(!pattern_matches("", "a"));
    }

    /// Inserts a principal and returns its id.
    async fn principal(store: &Store, kind: &str, name: &str) -> Principal {
        let p = Principal {
            principal_id: crate::store::principal::new_principal_id(),
            principal_type: kind.into(),
            name: name.into(),
            is_admin: false,
            created_at: 1,
        };
        sql!(
            "INSERT INTO principals (principal_id, principal_type, name, is_admin, created_at) VALUES ($1, $2, $3, 0, 1)",
            &p.principal_id,
            kind,
            name
        )
        .query()
        .execute(store.writer())
        .await
        .unwrap();
        p
    }

    async fn grant(store: &Store, portfolio: &str, kind: &str, key: &str, is_pattern: bool) {
        sql!("INSERT INTO portfolios (portfolio_id, portfolio_name, provider_name, description, created_at, updated_at) VALUES ($1, $1, 'p', '', 1, 1) ON CONFLICT (portfolio_id) DO NOTHING", portfolio).query()
            .execute(store.writer())
            .await
            .unwrap();
        let grant = Grant { principal_type: kind.into(), principal_key: key.into(), is_pattern };
        assert!(store.insert_grant(portfolio, &grant).await.unwrap());
        assert!(!store.insert_grant(portfolio, &grant).await.unwrap());
    }

    #[tokio::test]
    async fn grants_resolve_directly_through_roles_and_by_pattern() {
        testing::each_store(|store| async move {
            let alice = principal(&store, RAM_USER, "alice").await;
            let bob = principal(&store, RAM_USER, "bob").await;
            let dev_carol = principal(&store, RAM_USER, "dev-carol").await;
            let nobody = principal(&store, RAM_USER, "nobody").await;
            let ops = principal(&store, RAM_ROLE, "ops").await;
            let team_x = principal(&store, RAM_ROLE, "team-x").await;
            for (role, user) in [(&ops, &bob), (&team_x, &alice)] {
                sql!("INSERT INTO role_members (role_id, user_id) VALUES ($1, $2)", &role.principal_id, &user.principal_id)
                    .execute(store.writer())
                    .await
                    .unwrap();
            }
            grant(&store, "port-direct", RAM_USER, &alice.principal_id, false).await;
            grant(&store, "port-role", RAM_ROLE, &ops.principal_id, false).await;
            grant(&store, "port-userpat", RAM_USER, "dev-*", true).await;
            grant(&store, "port-rolepat", RAM_ROLE, "team-*", true).await;
            // A user pattern never matches role names, nor an id pattern a name.
            grant(&store, "port-none", RAM_USER, "ops", true).await;
            grant(&store, "port-none", RAM_ROLE, "alice", true).await;

            let granted = |p: Principal| {
                let store = store.clone();
                async move { store.portfolios_granted_to(&p).await.unwrap().to_vec() }
            };
            assert_eq!(granted(alice).await, ["port-direct", "port-rolepat"]);
            assert_eq!(granted(bob).await, ["port-role"]);
            assert_eq!(granted(dev_carol).await, ["port-userpat"]);
            assert!(granted(nobody).await.is_empty());
            assert_eq!(granted(ops).await, ["port-role"]);
            assert_eq!(granted(team_x).await, ["port-rolepat"]);

            assert_eq!(store.grants_of("port-none").await.unwrap().len(), 2);
            let gone = Grant { principal_type: RAM_USER.into(), principal_key: "ops".into(), is_pattern: true };
            assert!(store.delete_grant("port-none", &gone).await.unwrap());
            assert!(!store.delete_grant("port-none", &gone).await.unwrap());
            assert_eq!(store.grants_of("port-none").await.unwrap()[0].principal_key, "alice");
        })
        .await;
    }
}
