//! `servicecatalog users …`: manage principals and their AccessKeys from the shell, directly in
//! the store (works while the server runs).

use anyhow::bail;
use serde_json::json;

use crate::auth::new_access_key;
use crate::ops::data::DataOptions;

/// `users create NAME [--role ROLE …]`: prints the new user's key pair (the only time the secret
/// is shown); the user joins each role, which is created if it does not exist.
pub async fn create(data: &DataOptions, name: &str, admin: bool, roles: &[String], as_json: bool) -> anyhow::Result<()> {
    if !crate::auth::valid_principal_name(name) {
        bail!("invalid user name {name:?}: {}", crate::auth::PRINCIPAL_NAME_RULE);
    }
    roles.iter().try_for_each(|r| crate::roles::check_role_name(r))?;
    let (store, secrets) = data.open().await?;
    let (id, secret) = new_access_key();
    let Some(user) = store.create_user(name, admin, &id, &secrets.seal(&secret)).await? else {
        bail!("a user named {name:?} exists already");
    };
    store.add_user_to_roles(&user.principal_id, roles).await?;
    store.settle_auth_changes().await;
    let out = json!({
        "UserName": user.name,
        "PrincipalId": user.principal_id,
        "PrincipalType": user.principal_type,
        "AccessKeyId": id,
        "AccessKeySecret": secret,
    });
    if as_json {
        println!("{out}");
    } else {
        for key in ["UserName", "PrincipalId", "PrincipalType", "AccessKeyId", "AccessKeySecret"] {
            println!("{key}: {}", out[key].as_str().unwrap_or_default());
        }
    }
    Ok(())
}

/// `users list`: names, ids, roles and key ids (never secrets).
pub async fn list(data: &DataOptions, as_json: bool) -> anyhow::Result<()> {
    let (store, _) = data.open().await?;
    let users = store.list_users().await?;
    if as_json {
        let rows: Vec<_> = users
            .iter()
            .map(|(u, keys)| json!({"UserName": u.name, "PrincipalId": u.principal_id, "PrincipalType": u.principal_type, "Admin": u.is_admin, "AccessKeyIds": keys}))
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else {
        println!("{:<24} {:<18} {:<6} ACCESS KEYS", "NAME", "PRINCIPAL ID", "ADMIN");
        for (u, keys) in users {
            println!("{:<24} {:<18} {:<6} {}", u.name, u.principal_id, if u.is_admin { "yes" } else { "no" }, keys.join(","));
        }
    }
    Ok(())
}

/// `users delete NAME`.
pub async fn delete(data: &DataOptions, name: &str) -> anyhow::Result<()> {
    if name == crate::store::principal::ROOT_USER_NAME {
        bail!("the root administrator cannot be deleted");
    }
    let (store, _) = data.open().await?;
    if !store.delete_user(name).await? {
        bail!("no user named {name:?}");
    }
    store.settle_auth_changes().await;
    println!("deleted user {name}");
    Ok(())
}
