//! The rules of provisioning: through which portfolio a caller may launch a product (its launch
//! options), what the constraints of that (product, portfolio) demand (launch role, allowed
//! parameter values, regions, approval), which parameters and tags a task gets, and who may
//! change a provisioned product. Everything is checked before anything is written. Plans
//! ([`plan`]) go through the same checks, except that an `Approval` constraint does not refuse
//! them: it makes their execution wait for an approver.

pub mod job;
pub mod plan;

use serde_json::{json, Value};

use crate::catalog::constraint::{ApprovalConfig, ConstraintConfig, OperationType};
use crate::catalog::error::DomainError;
use crate::catalog::parameters::{self, ParameterConstraint};
use crate::catalog::version::{launchable_version, LaunchableVersion};
use crate::store::principal::Principal;
use crate::store::provisioning::ProvisionedProduct;
use crate::store::Store;

/// Most tags a task may carry (caller's plus tag options).
pub const MAX_TAGS: usize = 20;

/// A request to launch or update, validated: what the task will run with.
pub struct Change {
    /// The portfolio the caller goes through.
    pub portfolio_id: String,
    /// The version to provision.
    pub version: LaunchableVersion,
    /// Parameters, complete (for updates: merged over the previous ones).
    pub parameters: Vec<(String, String)>,
    /// Names of sensitive parameters (masked in responses).
    pub sensitive: Vec<String>,
    /// Tag options merged with the caller's tags.
    pub tags: Vec<(String, String)>,
    /// Launch role from a `Launch` constraint.
    pub launch_role: Option<String>,
}

/// What the caller asked for.
pub struct ChangeRequest<'a> {
    pub principal: &'a Principal,
    pub operation: OperationType,
    pub product_id: &'a str,
    pub version_id: &'a str,
    pub portfolio_id: Option<&'a str>,
    pub region: &'a str,
    pub parameters: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// Validates a launch or update completely and returns what its task will run with; refused
/// when an `Approval` constraint covers the operation (it needs a plan).
pub async fn resolve(store: &Store, allowed_regions: &[String], req: ChangeRequest<'_>) -> Result<Change, DomainError> {
    let operation = req.operation;
    let (change, approval) = resolve_for_plan(store, allowed_regions, req).await?;
    match approval {
        Some(_) => Err(approval_required(operation)),
        None => Ok(change),
    }
}

/// Validates a launch or update as [`resolve`] does, and returns with it the `Approval`
/// constraint covering the operation, if any.
pub async fn resolve_for_plan(
    store: &Store,
    allowed_regions: &[String],
    req: ChangeRequest<'_>,
) -> Result<(Change, Option<ApprovalConfig>), DomainError> {
    store.product(req.product_id).await?.ok_or_else(|| DomainError::not_found("Product", req.product_id))?;
    let portfolio_id = launch_option(store, req.principal, req.product_id, req.portfolio_id).await?;
    let version = launchable_version(store, req.product_id, req.version_id).await?;
    if !allowed_regions.iter().any(|r| r == req.region) {
        return Err(DomainError::invalid_parameter(
            "StackRegionId",
            format!("The region {:?} is not offered here; ListRegions lists the regions.", req.region),
        ));
    }
    let mut constraints: Vec<ParameterConstraint> = version.parameters.clone();
    let mut launch_role = None;
    let mut approval = None;
    for config in crate::catalog::constraint::configs(store, &portfolio_id, req.product_id).await? {
        match config {
            ConstraintConfig::Launch(c) => launch_role = Some(c.local_role_name),
            ConstraintConfig::Template(c) => parameters::apply_template_constraint(&mut constraints, &c),
            ConstraintConfig::StackRegion(c) if !c.allows(req.region) => {
                return Err(DomainError::invalid_parameter(
                    "StackRegionId",
                    format!("The region {:?} is not allowed for this product; allowed: {}.", req.region, c.stack_regions.join(", ")),
                ))
            }
            ConstraintConfig::Approval(c) if c.covers(req.operation) => approval = Some(c),
            _ => {}
        }
    }
    parameters::check_launch_parameters(&constraints, &req.parameters).map_err(|e| DomainError::invalid_parameter("Parameters", e.0))?;
    check_tags(&req.tags)?;
    let tags = merge_tags(store, req.product_id, &portfolio_id, req.tags).await?;
    let sensitive = constraints.iter().filter(|c| c.sensitive).map(|c| c.name.clone()).collect();
    Ok((Change { portfolio_id, version, parameters: req.parameters, sensitive, tags, launch_role }, approval))
}

/// The `Approval` constraint of a (portfolio, product) covering `operation`, if any.
pub async fn approval_for(
    store: &Store,
    portfolio_id: &str,
    product_id: &str,
    operation: OperationType,
) -> Result<Option<ApprovalConfig>, DomainError> {
    Ok(crate::catalog::constraint::configs(store, portfolio_id, product_id).await?.into_iter().find_map(|c| match c {
        ConstraintConfig::Approval(c) if c.covers(operation) => Some(c),
        _ => None,
    }))
}

/// Names of the sensitive variables of a version's template (masked wherever parameters are
/// shown); none when the version or its template is gone.
pub async fn sensitive_parameters(store: &Store, version_id: &str) -> Result<Vec<String>, DomainError> {
    let Some(version) = store.product_version(version_id).await? else { return Ok(Vec::new()) };
    Ok(crate::catalog::version::version_template(store, &version)
        .await?
        .map(|(_, parameters)| parameters.into_iter().filter(|p| p.sensitive).map(|p| p.name).collect())
        .unwrap_or_default())
}

/// `403 Forbidden.ApprovalRequired` for a direct operation an `Approval` constraint covers.
pub fn approval_required(operation: OperationType) -> DomainError {
    DomainError::Forbidden {
        reason: "ApprovalRequired",
        message: format!(
            "{} needs an approval under the portfolio's Approval constraint: create a plan with \
             CreateProvisionedProductPlan (OperationType {0}), have an approver approve it, then run it with \
             ExecuteProvisionedProductPlan.",
            operation_name(operation)
        ),
        detail: json!({"AuthAction": format!("servicecatalog:{}", operation_name(operation)), "NoPermissionType": "ApprovalRequired"}),
    }
}

/// The wire name of an operation.
pub fn operation_name(op: OperationType) -> &'static str {
    match op {
        OperationType::LaunchProduct => "LaunchProduct",
        OperationType::UpdateProvisionedProduct => "UpdateProvisionedProduct",
        OperationType::TerminateProvisionedProduct => "TerminateProvisionedProduct",
    }
}

/// The portfolio a caller launches `product_id` through: the one named, if it is one of the
/// caller's launch options, or the only launch option.
pub async fn launch_option(store: &Store, principal: &Principal, product_id: &str, asked: Option<&str>) -> Result<String, DomainError> {
    let granted = store.portfolios_granted_to(principal).await?;
    let options: Vec<String> =
        store.product_portfolios(&[product_id.to_string()], &granted).await?.into_iter().map(|(_, portfolio)| portfolio).collect();
    let no_option = |message: String| DomainError::Forbidden {
        reason: "NoLaunchOption",
        message,
        detail: json!({"AuthAction": "servicecatalog:LaunchProduct", "AuthPrincipalDisplayName": principal.name, "NoPermissionType": "ImplicitDeny"}),
    };
    if options.is_empty() && !principal.is_admin {
        // A product none of the caller's portfolios holds is as missing as one that does not exist.
        return Err(DomainError::not_found("Product", product_id));
    }
    match asked {
        Some(portfolio) if options.iter().any(|o| o == portfolio) => Ok(portfolio.to_string()),
        Some(portfolio) => Err(no_option(format!("The product {product_id} is not available to you through the portfolio {portfolio}."))),
        None => match options.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(no_option(format!("The product {product_id} is not available to you through any portfolio."))),
            many => Err(DomainError::MissingParameter {
                parameter: "PortfolioId".into(),
                message: format!("The product {product_id} has {} launch options; name one with PortfolioId.", many.len()),
            }),
        },
    }
}

/// Tag rules: keys not starting with `acs:`/`aliyun`, values not starting with `acs:`, neither
/// holding a URL.
fn check_tags(tags: &[(String, String)]) -> Result<(), DomainError> {
    if tags.len() > MAX_TAGS {
        return Err(DomainError::invalid_parameter("Tags", format!("At most {MAX_TAGS} tags are allowed.")));
    }
    for (i, (key, value)) in tags.iter().enumerate() {
        let n = i + 1;
        if let Some(problem) = crate::catalog::tag::key_problem(key) {
            return Err(DomainError::invalid_parameter("Tags", format!("The parameter Tags.{n}.Key {problem}.")));
        }
        if let Some(problem) = crate::catalog::tag::value_problem(value) {
            return Err(DomainError::invalid_parameter("Tags", format!("The parameter Tags.{n}.Value {problem}.")));
        }
    }
    Ok(())
}

/// Active tag options of the product and the portfolio, then the caller's tags for other keys.
async fn merge_tags(
    store: &Store,
    product_id: &str,
    portfolio_id: &str,
    caller: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, DomainError> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for resource in [product_id, portfolio_id] {
        for option in store.resource_tag_options(resource).await?.into_iter().filter(|o| o.active) {
            if !tags.iter().any(|(k, _)| *k == option.key) {
                tags.push((option.key, option.value));
            }
        }
    }
    for (key, value) in caller {
        if !tags.iter().any(|(k, _)| *k == key) {
            tags.push((key, value));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(DomainError::invalid_parameter(
            "Tags",
            format!(
                "With the tag options of the product and portfolio the task would carry {} tags; at most {MAX_TAGS} are allowed.",
                tags.len()
            ),
        ));
    }
    Ok(tags)
}

/// Refuses a caller who may not see or change `pp`: end users only reach what they own; anyone
/// else's provisioned product answers exactly like one that does not exist.
pub fn check_owner(principal: &Principal, pp: &ProvisionedProduct) -> Result<(), DomainError> {
    if principal.is_admin || pp.owner_principal_id == principal.principal_id {
        return Ok(());
    }
    Err(DomainError::not_found("ProvisionedProduct", &pp.provisioned_product_id))
}

/// `[{ParameterKey, ParameterValue}]` as stored (sealed) with tasks.
pub fn parameters_json(parameters: &[(String, String)]) -> String {
    Value::Array(parameters.iter().map(|(k, v)| json!({"ParameterKey": k, "ParameterValue": v})).collect()).to_string()
}

/// Parameters from their stored JSON form.
pub fn parameters_from_json(text: &str) -> Vec<(String, String)> {
    serde_json::from_str::<Vec<Value>>(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| Some((p["ParameterKey"].as_str()?.to_string(), p["ParameterValue"].as_str().unwrap_or_default().to_string())))
        .collect()
}

/// Update parameters: the previous values the new version still declares, overlaid with the
/// given ones.
pub fn merge_parameters(
    previous: &[(String, String)],
    given: &[(String, String)],
    declared: &[ParameterConstraint],
) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = previous.iter().filter(|(k, _)| declared.iter().any(|d| &d.name == k)).cloned().collect();
    for (key, value) in given {
        match merged.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.clone(),
            None => merged.push((key.clone(), value.clone())),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn tags_follow_the_services_rules() {
        assert!(check_tags(&[p("env", "dev")]).is_ok());
        assert!(check_tags(&[p("acs:x", "dev")]).is_err());
        assert!(check_tags(&[p("aliyunx", "dev")]).is_err());
        assert!(check_tags(&[p("env", "https://x")]).is_err());
        assert!(check_tags(&[p("env", "acs:x")]).is_err());
        let many: Vec<_> = (0..21).map(|i| p(&format!("k{i}"), "v")).collect();
        assert!(check_tags(&many).is_err());
    }

    #[test]
    fn parameters_round_trip_and_merge() {
        let params = vec![p("a", "1"), p("b", "x y")];
        assert_eq!(parameters_from_json(&parameters_json(&params)), params);
        let declared: Vec<ParameterConstraint> = ["a", "c"]
            .iter()
            .map(|n| ParameterConstraint {
                name: n.to_string(),
                type_expr: None,
                default: None,
                label: None,
                description: None,
                sensitive: false,
                allowed_values: None,
                has_validation: false,
            })
            .collect();
        assert_eq!(merge_parameters(&params, &[p("c", "3"), p("a", "2")], &declared), vec![p("a", "2"), p("c", "3")]);
    }
}
