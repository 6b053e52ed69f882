//! `servicecatalog roles …` and `servicecatalog launch-roles …`: RAM roles (principals users are
//! members of, granted portfolios like users) and launch roles (named sets of environment
//! variables a Launch constraint hands to Terraform), managed directly in the store.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde_json::json;

use crate::catalog::constraint::check_name;
use crate::ops::data::DataOptions;

/// Refuses role names that are not 1–64 letters, digits, `-`, `_`, `.` or `@`.
pub fn check_role_name(name: &str) -> anyhow::Result<()> {
    if !crate::auth::valid_principal_name(name) {
        bail!("invalid role name {name:?}: {}", crate::auth::PRINCIPAL_NAME_RULE);
    }
    Ok(())
}

/// `roles create NAME`.
pub async fn create(data: &DataOptions, name: &str, as_json: bool) -> anyhow::Result<()> {
    check_role_name(name)?;
    let (store, _) = data.open().await?;
    if !store.create_role(name).await? {
        bail!("a role named {name:?} exists already");
    }
    store.settle_auth_changes().await;
    let role = store.list_roles().await?.into_iter().find(|r| r.name == name).context("the new role disappeared")?;
    if as_json {
        println!("{}", json!({"RoleName": role.name, "PrincipalId": role.role_id, "PrincipalType": "RamRole"}));
    } else {
        println!("RoleName: {}\nPrincipalId: {}\nPrincipalType: RamRole", role.name, role.role_id);
    }
    Ok(())
}

/// `roles list`: names, ids and member user names.
pub async fn list(data: &DataOptions, as_json: bool) -> anyhow::Result<()> {
    let (store, _) = data.open().await?;
    let roles = store.list_roles().await?;
    if as_json {
        let rows: Vec<_> = roles
            .iter()
            .map(|r| json!({"RoleName": r.name, "PrincipalId": r.role_id, "PrincipalType": "RamRole", "Members": r.members}))
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else {
        println!("{:<24} {:<18} MEMBERS", "NAME", "PRINCIPAL ID");
        for r in roles {
            println!("{:<24} {:<18} {}", r.name, r.role_id, r.members.join(","));
        }
    }
    Ok(())
}

/// `roles delete NAME`: also removes its memberships and the portfolio grants naming it.
pub async fn delete(data: &DataOptions, name: &str) -> anyhow::Result<()> {
    let (store, _) = data.open().await?;
    if !store.delete_role(name).await? {
        bail!("no role named {name:?}");
    }
    store.settle_auth_changes().await;
    println!("deleted role {name}");
    Ok(())
}

/// `launch-roles create NAME --env KEY=VALUE …`: creates or replaces the role's variables.
pub async fn create_launch_role(data: &DataOptions, name: &str, env: &[String]) -> anyhow::Result<()> {
    check_name("launch role name", name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut vars = BTreeMap::new();
    for pair in env {
        let Some((key, value)) = pair.split_once('=') else { bail!("--env {pair:?} is not KEY=VALUE") };
        let valid =
            !key.is_empty() && !key.starts_with(|c: char| c.is_ascii_digit()) && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            bail!("{key:?} is not a valid environment variable name");
        }
        if crate::engine::reserved_variable(key) {
            bail!("{key} is set by the engine or changes how Terraform runs (PATH, HOME, TF_CLI_ARGS*, TF_LOG*, TF_CLI_CONFIG_FILE, the region, …); a launch role cannot set it");
        }
        if vars.insert(key.to_string(), value.to_string()).is_some() {
            bail!("--env {key} is given twice");
        }
    }
    if vars.is_empty() {
        bail!("a launch role needs at least one --env KEY=VALUE");
    }
    let (store, secrets) = data.open().await?;
    let sealed = secrets.seal(&serde_json::to_string(&vars)?);
    store.put_launch_role(name, &sealed).await?;
    println!("launch role {name}: {}", vars.keys().cloned().collect::<Vec<_>>().join(", "));
    Ok(())
}

/// `launch-roles list`: names and variable names, never values.
pub async fn list_launch_roles(data: &DataOptions, as_json: bool) -> anyhow::Result<()> {
    let (store, secrets) = data.open().await?;
    let mut rows = Vec::new();
    for role in store.list_launch_roles().await? {
        let vars: BTreeMap<String, String> = secrets
            .open(&role.env_sealed)
            .and_then(|text| serde_json::from_str(&text).ok())
            .with_context(|| format!("the variables of launch role {:?} cannot be opened with this master key", role.name))?;
        rows.push((role.name, vars.into_keys().collect::<Vec<_>>()));
    }
    if as_json {
        let out: Vec<_> = rows.iter().map(|(name, vars)| json!({"LocalRoleName": name, "VariableNames": vars})).collect();
        println!("{}", serde_json::Value::Array(out));
    } else {
        println!("{:<32} VARIABLES", "NAME");
        for (name, vars) in rows {
            println!("{name:<32} {}", vars.join(","));
        }
    }
    Ok(())
}

/// `launch-roles delete NAME`: refused while a Launch constraint names it.
pub async fn delete_launch_role(data: &DataOptions, name: &str) -> anyhow::Result<()> {
    let (store, _) = data.open().await?;
    let users = crate::catalog::constraint::constraints_using_launch_role(&store, name).await?;
    if !users.is_empty() {
        bail!("launch role {name:?} is used by constraint(s) {}; delete or update them first", users.join(", "));
    }
    if !store.delete_launch_role(name).await? {
        bail!("no launch role named {name:?}");
    }
    println!("deleted launch role {name}");
    Ok(())
}
