//! Identity pages for administrators: users (with their roles; create one, its AccessKey secret
//! shown once on the answer page and never again; delete one) and roles (with their members;
//! create, delete, add and remove a member). Every change is written to the audit trail as the
//! API's are, under the console's own action names (`CreateUser`, `DeleteUser`, `CreateRole`,
//! `DeleteRole`, `AddUserToRole`, `RemoveUserFromRole`). The vendor's API has no identity actions (RAM is another
//! service): these pages do what `servicecatalog users …` and `roles …` do on the server's machine,
//! in the store, for administrators only. Administrators are not created here.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};

use super::html::{action_button, csrf_input, error_box, page, seg};
use super::session::{Posted, Session};
use super::{record, respond, see_other, Form, PageError};
use crate::api::error::ApiError;
use crate::api::{format_time, SharedState};
use crate::auth::{new_access_key, valid_principal_name, PRINCIPAL_NAME_RULE};
use crate::catalog::error::administrators_only;
use crate::protocol::params::Params;
use crate::store::principal::Principal;
use crate::store::role::Role;

pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/console/admin/users", get(users).post(create_user))
        .route("/console/admin/users/{name}/delete", post(delete_user))
        .route("/console/admin/roles", get(roles).post(create_role))
        .route("/console/admin/roles/{name}/{operation}", post(change_role))
}

/// The names under which the audit trail records the changes of these pages.
pub(super) const IDENTITY_ACTIONS: [&str; 6] =
    ["CreateUser", "DeleteUser", "CreateRole", "DeleteRole", "AddUserToRole", "RemoveUserFromRole"];

/// Refuses end users, as the API refuses them administrators' actions.
fn administrators(session: &Session, what: &str) -> Result<(), ApiError> {
    Ok(administrators_only(&session.principal, what, "Only administrators manage users and roles.".into())?)
}

/// A name that breaks the rule of user and role names, refused as the field `field`.
fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    match valid_principal_name(name) {
        true => Ok(()),
        false => Err(ApiError::invalid_parameter(field, format!("The name {name:?} is not valid: {PRINCIPAL_NAME_RULE}."))),
    }
}

/// The role names of a form's comma- or space-separated field.
fn role_names(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace()).filter(|n| !n.is_empty()).map(str::to_string).collect()
}

async fn users(State(state): State<SharedState>, session: Session) -> Result<Response, PageError> {
    administrators(&session, "ListUsers")?;
    render_users(&state, &session, &Form::default(), None, None).await
}

/// The users page; `created` is a new user's key pair (shown once), `error` a refused creation.
async fn render_users(
    state: &SharedState,
    session: &Session,
    form: &Form,
    created: Option<(&Principal, &str, &str)>,
    error: Option<&ApiError>,
) -> Result<Response, PageError> {
    let users = state.store.list_users().await?;
    let roles = state.store.list_roles().await?;
    let roles_of = |name: &str| roles.iter().filter(|r| r.members.iter().any(|m| m == name)).map(|r| r.name.as_str()).collect::<Vec<_>>();
    let body = html! {
        @if let Some((user, id, secret)) = created {
            div.notice role="status" {
                p { "The user " strong { (user.name) } " was created. Give them this AccessKey pair; " strong { "the secret is shown only now" } "." }
                dl.pairs #new-key {
                    dt { "AccessKey ID" } dd { code { (id) } }
                    dt { "AccessKey secret" } dd { code { (secret) } }
                    dt { "Principal id" } dd { code { (user.principal_id) } }
                }
            }
        }
        table {
            thead { tr { th { "User" } th { "Principal id" } th { "Roles" } th { "Created" } th { span.visually-hidden { "Action" } } } }
            tbody {
                @for (user, _) in &users {
                    tr {
                        td { (user.name) @if user.is_admin { " " span.muted { "(administrator)" } } }
                        td { code { (user.principal_id) } }
                        td { (roles_of(&user.name).join(", ")) }
                        td { (format_time(user.created_at)) }
                        td {
                            @if !user.is_admin {
                                (action_button(session, &format!("/console/admin/users/{}/delete", seg(&user.name)), &format!("Delete {}", user.name), Some("Delete this user, its keys and its grants?")))
                            }
                        }
                    }
                }
            }
        }
        h2 { "Create a user" }
        form.stack method="post" action="/console/admin/users" {
            (csrf_input(session))
            label for="name" { "User name (required)" }
            input id="name" name="name" required value=(form.text("name")) aria-describedby="name-hint" aria-invalid=[error.filter(|e| e.code().ends_with(".UserName")).map(|_| "true")];
            small id="name-hint" { "1–64 letters, digits, " code { "-" } ", " code { "_" } ", " code { "." } " or " code { "@" } "." }
            label for="roles" { "Roles (optional, separated by commas; missing roles are created)" }
            input id="roles" name="roles" list="role-names" value=(form.text("roles")) aria-invalid=[error.filter(|e| e.code().ends_with(".RoleName")).map(|_| "true")];
            datalist id="role-names" { @for r in &roles { option value=(r.name) {} } }
            (error_box(error.map(ApiError::message)))
            button type="submit" { "Create user" }
        }
    };
    let status = error.map_or(StatusCode::OK, ApiError::status);
    Ok(respond(status, page("Users", Some(session), body)))
}

async fn create_user(State(state): State<SharedState>, Posted { session, form }: Posted) -> Result<Response, PageError> {
    let (name, roles) = (form.text("name").trim(), role_names(form.text("roles")));
    let created: Result<_, ApiError> = async {
        administrators(&session, "CreateUser")?;
        check_name("UserName", name)?;
        roles.iter().try_for_each(|r| check_name("RoleName", r))?;
        let (id, secret) = new_access_key();
        let Some(user) = state.store.create_user(name, false, &id, &state.secrets.seal(&secret)).await? else {
            return Err(ApiError::new(StatusCode::CONFLICT, "InvalidStatus.UserName", format!("A user named {name:?} exists already.")));
        };
        state.store.add_user_to_roles(&user.principal_id, &roles).await?;
        state.store.settle_auth_changes().await;
        Ok((user, id, secret))
    }
    .await;
    let params = Params::from_pairs([("UserName", name.to_string()), ("RoleNames", roles.join(","))]);
    record(&state, &session, "CreateUser", &params, created.as_ref().map(|_| &())).await;
    match created {
        Ok((user, id, secret)) => render_users(&state, &session, &Form::default(), Some((&user, &id, &secret)), None).await,
        Err(e) if e.status() == StatusCode::FORBIDDEN => Err(e.into()),
        Err(e) => render_users(&state, &session, &form, None, Some(&e)).await,
    }
}

async fn delete_user(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    Posted { session, .. }: Posted,
) -> Result<Response, PageError> {
    let deleted: Result<(), ApiError> = async {
        administrators(&session, "DeleteUser")?;
        let admin = state.store.list_users().await?.into_iter().any(|(u, _)| u.name == name && u.is_admin);
        if admin {
            return Err(ApiError::invalid_status("User", "Administrators are not deleted from the console."));
        }
        if !state.store.delete_user(&name).await? {
            return Err(ApiError::not_found("User", &name));
        }
        state.store.settle_auth_changes().await;
        Ok(())
    }
    .await;
    record(&state, &session, "DeleteUser", &Params::from_pairs([("UserName", name.as_str())]), deleted.as_ref()).await;
    deleted?;
    Ok(see_other("/console/admin/users"))
}

async fn roles(State(state): State<SharedState>, session: Session) -> Result<Response, PageError> {
    administrators(&session, "ListRoles")?;
    render_roles(&state, &session, &Form::default(), None).await
}

/// The roles page; `failed` is a refused change (its operation and error), shown at its form.
async fn render_roles(
    state: &SharedState,
    session: &Session,
    form: &Form,
    failed: Option<(&str, &ApiError)>,
) -> Result<Response, PageError> {
    let roles: Vec<Role> = state.store.list_roles().await?;
    let users = state.store.list_users().await?;
    let error_of = |operation: &str| failed.filter(|(o, _)| *o == operation).map(|(_, e)| e);
    let body = html! {
        table {
            thead { tr { th { "Role" } th { "Principal id" } th { "Members" } th { "Add a member" } th { span.visually-hidden { "Action" } } } }
            tbody {
                @for r in &roles {
                    @let path = format!("/console/admin/roles/{}", seg(&r.name));
                    tr {
                        td { (r.name) }
                        td { code { (r.role_id) } }
                        td {
                            @for member in &r.members {
                                form.inline method="post" action={ (path) "/remove-member" } data-confirm={ "Remove " (member) " from " (r.name) "?" } {
                                    (csrf_input(session))
                                    input type="hidden" name="user" value=(member);
                                    (member) " "
                                    button.danger type="submit" aria-label={ "Remove " (member) " from " (r.name) } { "Remove" }
                                }
                            }
                        }
                        td {
                            form.filter method="post" action={ (path) "/add-member" } {
                                (csrf_input(session))
                                select name="user" aria-label={ "User to add to " (r.name) } {
                                    @for (u, _) in users.iter().filter(|(u, _)| !r.members.contains(&u.name)) { option value=(u.name) { (u.name) } }
                                }
                                button type="submit" { "Add to " (r.name) }
                            }
                        }
                        td { (action_button(session, &format!("{path}/delete"), &format!("Delete {}", r.name), Some("Delete this role, its memberships and its grants?"))) }
                    }
                }
            }
        }
        (error_box(error_of("add-member").or(error_of("remove-member")).map(ApiError::message)))
        h2 { "Create a role" }
        form.stack method="post" action="/console/admin/roles" {
            (csrf_input(session))
            label for="name" { "Role name (required)" }
            input id="name" name="name" required value=(if error_of("create").is_some() { form.text("name") } else { "" }) aria-invalid=[error_of("create").map(|_| "true")];
            (error_box(error_of("create").map(ApiError::message)))
            button type="submit" { "Create role" }
        }
    };
    let status = failed.map_or(StatusCode::OK, |(_, e)| e.status());
    Ok(respond(status, page("Roles", Some(session), body)))
}

async fn create_role(State(state): State<SharedState>, Posted { session, form }: Posted) -> Result<Response, PageError> {
    let name = form.text("name").trim();
    let created: Result<(), ApiError> = async {
        administrators(&session, "CreateRole")?;
        check_name("RoleName", name)?;
        if !state.store.create_role(name).await? {
            return Err(ApiError::new(StatusCode::CONFLICT, "InvalidStatus.RoleName", format!("A role named {name:?} exists already.")));
        }
        state.store.settle_auth_changes().await;
        Ok(())
    }
    .await;
    record(&state, &session, "CreateRole", &Params::from_pairs([("RoleName", name)]), created.as_ref()).await;
    match created {
        Ok(()) => Ok(see_other("/console/admin/roles")),
        Err(e) if e.status() == StatusCode::FORBIDDEN => Err(e.into()),
        Err(e) => render_roles(&state, &session, &form, Some(("create", &e))).await,
    }
}

/// A change of the role `name`: `delete`, `add-member` or `remove-member` (the form's `user`).
async fn change_role(
    State(state): State<SharedState>,
    Path((name, operation)): Path<(String, String)>,
    Posted { session, form }: Posted,
) -> Result<Response, PageError> {
    let user_name = form.text("user");
    let (action, params) = match operation.as_str() {
        "delete" => ("DeleteRole", Params::from_pairs([("RoleName", name.as_str())])),
        "add-member" => ("AddUserToRole", Params::from_pairs([("RoleName", name.as_str()), ("UserName", user_name)])),
        "remove-member" => ("RemoveUserFromRole", Params::from_pairs([("RoleName", name.as_str()), ("UserName", user_name)])),
        _ => return Err(PageError::not_found()),
    };
    let changed: Result<(), ApiError> = async {
        administrators(&session, action)?;
        if !state.store.list_roles().await?.iter().any(|r| r.name == name) {
            return Err(ApiError::not_found("Role", &name));
        }
        if operation == "delete" {
            state.store.delete_role(&name).await?;
        } else {
            let user = state.store.list_users().await?.into_iter().find(|(u, _)| u.name == user_name).map(|(u, _)| u);
            let user = user.ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, "EntityNotExists.User", format!("There is no user named {user_name:?}."))
            })?;
            if operation == "add-member" {
                state.store.add_user_to_roles(&user.principal_id, std::slice::from_ref(&name)).await?;
            } else if !state.store.remove_user_from_role(&user.principal_id, &name).await? {
                return Err(ApiError::invalid_status("User", format!("{user_name:?} is not a member of the role {name:?}.")));
            }
        }
        state.store.settle_auth_changes().await;
        Ok(())
    }
    .await;
    record(&state, &session, action, &params, changed.as_ref()).await;
    match changed {
        Ok(()) => Ok(see_other("/console/admin/roles")),
        Err(e) if e.code() == "EntityNotExists.User" || e.status() == StatusCode::CONFLICT => {
            render_roles(&state, &session, &form, Some((operation.as_str(), &e))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Names of every user and role by principal id, for pages that show owners and grants.
pub(super) async fn principal_names(state: &SharedState) -> Result<std::collections::HashMap<String, String>, PageError> {
    let mut names: std::collections::HashMap<String, String> =
        state.store.list_users().await?.into_iter().map(|(u, _)| (u.principal_id, u.name)).collect();
    names.extend(state.store.list_roles().await?.into_iter().map(|r| (r.role_id, r.name)));
    Ok(names)
}

/// The `datalist` of users and roles offered by a grant's principal id field.
pub(super) async fn principal_picker(state: &SharedState, id: &str) -> Result<Markup, PageError> {
    let users = state.store.list_users().await?;
    let roles = state.store.list_roles().await?;
    Ok(html! {
        datalist id=(id) {
            @for (u, _) in &users { option value=(u.principal_id) { "User " (u.name) } }
            @for r in &roles { option value=(r.role_id) { "Role " (r.name) } }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn role_names_split_on_commas_and_spaces() {
        assert_eq!(super::role_names(" ops, dev  qa,,"), ["ops", "dev", "qa"]);
        assert!(super::check_name("UserName", "ann@example.com").is_ok());
        assert_eq!(super::check_name("RoleName", "no spaces").unwrap_err().code(), "InvalidParameter.RoleName");
    }
}
