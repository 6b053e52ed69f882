//! The rules of provisioning: through which portfolio a caller may launch a product (its launch
//! options), what the constraints of that (product, portfolio) demand (launch role, allowed
//! parameter values, regions, approval), which parameters and tags a task gets, and who may
//! change a provisioned product. Everything is checked before anything is written. Plans
//! ([`plan`]) go through the same checks, except that an `Approval` constraint does not refuse
//! them: it makes their execution wait for an approver.

pub mod campaign;
pub mod dependency;
pub mod drift;
pub mod expiry;
pub mod job;
pub mod plan;
pub mod queue;
pub mod schedule;
pub mod task;
pub mod update_policy;
pub mod webhook;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::catalog::constraint::{ApprovalConfig, ConstraintConfig, OperationType};
use crate::catalog::error::DomainError;
use crate::catalog::parameters::{self, ParameterConstraint};
use crate::catalog::version::launchable_version;
use crate::model::Region;
use crate::store::dependency::ParameterReference;
use crate::store::principal::Principal;
use crate::store::product::{ProductVersion, DEPRECATED};
use crate::store::provisioning::ProvisionedProduct;
use crate::store::Store;

/// Most tags a task may carry (caller's plus tag options).
pub const MAX_TAGS: usize = 20;

/// A launch, update or terminate, validated: what its task (or plan) will run with.
#[derive(Debug, Clone)]
pub struct Change {
    /// What the change does.
    pub operation: OperationType,
    /// The portfolio the caller goes through.
    pub portfolio_id: String,
    /// The product, its name, and the version to provision.
    pub product_id: String,
    pub product_name: String,
    pub version_id: String,
    pub version_name: String,
    /// Parameters, complete (for updates: merged over the previous ones).
    pub parameters: Vec<(String, String)>,
    /// Names of sensitive parameters (masked in responses).
    pub sensitive: Vec<String>,
    /// The caller's tags (a plan keeps them to be re-validated when it is updated).
    pub tags: Vec<(String, String)>,
    /// Tag options merged with the caller's tags: the task's tags.
    pub task_tags: Vec<(String, String)>,
    /// Launch role from a `Launch` constraint.
    pub launch_role: Option<String>,
    /// The `Approval` constraint covering the operation, if any: a direct operation is refused,
    /// a plan waits for an approver.
    pub approval: Option<ApprovalConfig>,
    /// The parameters resolved from references (an extension: [`dependency`]).
    pub references: Vec<ParameterReference>,
}

impl Change {
    /// The change as a direct operation may run it: refused when an `Approval` constraint
    /// covers it (it needs a plan).
    pub fn direct(self) -> Result<Change, DomainError> {
        match self.approval {
            Some(_) => Err(approval_required(self.operation)),
            None => Ok(self),
        }
    }
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
    /// The parameters resolved from references ([`dependency`]).
    pub references: Vec<ParameterReference>,
}

/// Validates a launch or update completely: launch option, version, region, constraints,
/// parameters and tags. Nothing is written.
pub async fn resolve(store: &Store, allowed_regions: &[Region], req: ChangeRequest<'_>) -> Result<Change, DomainError> {
    let product = store.product(req.product_id).await?.ok_or_else(|| DomainError::not_found("Product", req.product_id))?;
    let portfolio_id = launch_option(store, req.principal, req.product_id, req.portfolio_id).await?;
    let version = launchable_version(store, req.product_id, req.version_id).await?;
    if req.operation == OperationType::LaunchProduct {
        refuse_deprecated(&version.version)?;
    }
    if !allowed_regions.iter().any(|r| r.region_id == req.region) {
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
    if let Some(secret) = req.references.iter().find(|r| constraints.iter().any(|c| c.sensitive && c.name == r.parameter_key)) {
        return Err(DomainError::invalid_parameter(
            "Parameters",
            format!("The parameter {} is sensitive: it cannot take its value from a reference.", secret.parameter_key),
        ));
    }
    check_tags(&req.tags)?;
    let task_tags = merge_tags(store, req.product_id, &portfolio_id, req.tags.clone()).await?;
    Ok(Change {
        operation: req.operation,
        portfolio_id,
        product_id: product.product_id,
        product_name: product.product_name,
        version_id: version.version.product_version_id,
        version_name: version.version.product_version_name,
        parameters: req.parameters,
        sensitive: constraints.iter().filter(|c| c.sensitive).map(|c| c.name.clone()).collect(),
        tags: req.tags,
        task_tags,
        launch_role,
        approval,
        references: req.references,
    })
}

/// `InvalidStatus.ProductVersion`: `version`'s `Guidance` is `Deprecated`, so nothing may be
/// launched from it or updated to it.
pub fn refuse_deprecated(version: &ProductVersion) -> Result<(), DomainError> {
    if version.guidance != DEPRECATED {
        return Ok(());
    }
    Err(DomainError::invalid_status(
        "ProductVersion",
        format!(
            "The product version {} ({}) is Deprecated: it can no longer be launched or updated to; choose another \
             version (ListProductVersions shows each version's Guidance).",
            version.product_version_id, version.product_version_name
        ),
    ))
}

/// `InvalidStatus.ProvisionedProduct`: `pp` is `UnderChange`.
pub fn refuse_under_change(pp: &ProvisionedProduct) -> DomainError {
    DomainError::invalid_status(
        "ProvisionedProduct",
        format!(
            "The provisioned product {} is UnderChange: wait for its task {} to finish.",
            pp.provisioned_product_id,
            pp.last_task_id.as_deref().unwrap_or("-")
        ),
    )
}

/// Refuses a change of `pp` that names another product than the one it was launched from.
pub fn check_product(pp: &ProvisionedProduct, product_id: &str) -> Result<(), DomainError> {
    if product_id == pp.product_id {
        return Ok(());
    }
    Err(DomainError::invalid_parameter(
        "ProductId",
        format!("The provisioned product {} was launched from product {}, not {product_id}.", pp.provisioned_product_id, pp.product_id),
    ))
}

/// Whether two parameter lists hold the same pairs, in any order.
pub fn same_parameters(a: &[(String, String)], b: &[(String, String)]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
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
            operation
        ),
        detail: json!({"AuthAction": format!("servicecatalog:{}", operation), "NoPermissionType": "ApprovalRequired"}),
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

/// Tag rules: at most [`MAX_TAGS`], keys not empty, not starting with `acs:`/`aliyun` and given
/// once, values not starting with `acs:`, neither holding a URL.
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
        if tags[..i].iter().any(|(k, _)| k == key) {
            return Err(DomainError::invalid_parameter("Tags", format!("The parameter Tags.{n}.Key {key:?} is given more than once.")));
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

/// A parameter as tasks and plans keep it (a sealed JSON array) and callers read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Parameter {
    #[serde(default)]
    pub parameter_key: String,
    #[serde(default)]
    pub parameter_value: String,
}

/// A tag as tasks and plans keep it (a JSON array) and callers read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// An output of a task, or one a plan promises (without a value while it is unknown until apply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub output_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_value: Option<String>,
    #[serde(default)]
    pub description: String,
}

/// A JSON array the store keeps in a text column, decoded (empty if it is not one).
pub fn stored<T: DeserializeOwned>(text: &str) -> Vec<T> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Parameters in their stored form.
pub fn parameters_json(parameters: &[(String, String)]) -> String {
    let list: Vec<Parameter> = parameters.iter().map(|(k, v)| Parameter { parameter_key: k.clone(), parameter_value: v.clone() }).collect();
    serde_json::to_string(&list).expect("parameters serialise")
}

/// Parameters as `(key, value)` pairs.
pub fn pairs(parameters: Vec<Parameter>) -> Vec<(String, String)> {
    parameters.into_iter().map(|p| (p.parameter_key, p.parameter_value)).collect()
}

/// Tags as `(key, value)` pairs.
pub fn tag_pairs(tags: Vec<Tag>) -> Vec<(String, String)> {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

/// Parameters from their stored form.
pub fn parameters_from_json(text: &str) -> Vec<(String, String)> {
    pairs(stored(text))
}

/// Tags in their stored form.
pub fn tags_json(tags: &[(String, String)]) -> String {
    let list: Vec<Tag> = tags.iter().map(|(k, v)| Tag { key: k.clone(), value: v.clone() }).collect();
    serde_json::to_string(&list).expect("tags serialise")
}

/// Tags from their stored form.
pub fn tags_from_json(text: &str) -> Vec<(String, String)> {
    tag_pairs(stored(text))
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
        assert!(check_tags(&[p("env", "a"), p("env", "b")]).unwrap_err().to_string().contains("Tags.2.Key"));
        let many: Vec<_> = (0..21).map(|i| p(&format!("k{i}"), "v")).collect();
        assert!(check_tags(&many).is_err());
    }

    #[test]
    fn parameters_round_trip_and_merge() {
        let params = vec![p("a", "1"), p("b", "x y")];
        assert_eq!(parameters_from_json(&parameters_json(&params)), params);
        assert_eq!(tags_from_json(&tags_json(&params)), params);
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
