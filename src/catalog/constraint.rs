//! Constraints' `Config` documents, parsed strictly and in one place so that the API (create,
//! update, `ListLaunchOptions`) and the engine (launch, update, terminate, plans) read them alike.
//! The public API documents only `Launch`; the other three formats are ours:
//!
//! | Type          | Config                                                                          |
//! |---------------|---------------------------------------------------------------------------------|
//! | `Launch`      | `{"LocalRoleName": "<launch role>"}`                                            |
//! | `Template`    | `{"Parameters": {"<variable>": {"AllowedValues": ["a", "b"]}}}`                 |
//! | `Approval`    | `{"OperationTypes": ["LaunchProduct", …], "Approvers": [{"Type": "RamUser"|"RamRole", "Id": "…"} or {"Type": …, "Pattern": "dev-*"}]}` |
//! | `StackRegion` | `{"StackRegions": ["cn-hangzhou", …]}`                                          |
//! | `Sandbox`     | `{"Network": "Off"}` (or `"On"`, the default): whether Terraform reaches the network |
//! | `Drift`       | `{"IntervalMinutes": 60, "Remediation": "None"|"Reapply"|"ReapplyWithApproval"}`: scheduled drift checks |
//! | `Expiry`      | `{"DefaultMinutes": 1440, "MaxMinutes": 10080, "WarningMinutes": [60]}`: lifetimes |

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use crate::model::{ConstraintType, OperationType, Remediation};
use crate::store::grant::{pattern_matches, RoleRef, RAM_ROLE};
use crate::store::principal::{Principal, RAM_USER};
use crate::store::{Store, StoreError};

/// Most items a Config list (values, regions, approvers, parameters) may hold.
const MAX_ITEMS: usize = 100;

/// An example Config of a constraint type, as forms offer it.
pub fn example_config(kind: ConstraintType) -> &'static str {
    match kind {
        ConstraintType::Launch => r#"{"LocalRoleName": "deployer"}"#,
        ConstraintType::Template => r#"{"Parameters": {"size": {"AllowedValues": ["small", "large"]}}}"#,
        ConstraintType::Approval => r#"{"OperationTypes": ["LaunchProduct"], "Approvers": [{"Type": "RamRole", "Pattern": "ops-*"}]}"#,
        ConstraintType::StackRegion => r#"{"StackRegions": ["cn-hangzhou"]}"#,
        ConstraintType::Sandbox => r#"{"Network": "Off"}"#,
        ConstraintType::Drift => r#"{"IntervalMinutes": 60, "Remediation": "None"}"#,
        ConstraintType::Expiry => r#"{"DefaultMinutes": 1440, "MaxMinutes": 10080, "WarningMinutes": [60]}"#,
    }
}

/// Why a Config was refused, phrased for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl From<String> for ConfigError {
    fn from(message: String) -> Self {
        ConfigError(message)
    }
}

/// `Launch`: the launch role whose variables Terraform receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LaunchConfig {
    /// Name of a launch role registered with `servicecatalog launch-roles create`.
    pub local_role_name: String,
}

/// `Template`: allowed values per template variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TemplateConfig {
    /// Variable name → rule.
    pub parameters: BTreeMap<String, ParameterRule>,
}

/// The rule of one template variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ParameterRule {
    /// The values a caller may pass (compared as the text of `ParameterValue`).
    pub allowed_values: Vec<String>,
}

/// `Approval`: which operations need approval and who may give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ApprovalConfig {
    /// Operations that need approval.
    pub operation_types: Vec<OperationType>,
    /// Who may approve.
    pub approvers: Vec<Approver>,
}

/// One approver: a user or role by id, or users/roles whose name matches a `*` pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Approver {
    /// `RamUser` or `RamRole`.
    #[serde(rename = "Type")]
    pub principal_type: String,
    /// Principal id (exclusive with `pattern`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name pattern with `*` wildcards (exclusive with `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

/// `StackRegion`: the regions products may be provisioned in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StackRegionConfig {
    /// Allowed `StackRegionId`s.
    pub stack_regions: Vec<String>,
}

/// `Sandbox`: how the product's Terraform runs are isolated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SandboxConfig {
    /// `On` (the default) or `Off`; the operator's `--task-network off` wins over `On`.
    pub network: Switch,
}

impl SandboxConfig {
    /// Whether the product's jobs may reach the network.
    pub fn network_on(&self) -> bool {
        self.network == Switch::On
    }
}

/// `Drift`: how often the provisioned products of the (portfolio, product) pair are checked for
/// drift, and what a check that finds drift does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DriftConfig {
    /// Minutes between two checks of a provisioned product (fractions allowed; the server's
    /// `--drift-min-interval-seconds`, 15 minutes by default, is the floor).
    pub interval_minutes: Minutes,
    /// What a check that finds drift does (`None` when absent).
    #[serde(default = "no_remediation")]
    pub remediation: Remediation,
}

/// A `Drift` Config without `Remediation` remedies nothing.
fn no_remediation() -> Remediation {
    Remediation::None
}

/// `Expiry`: how long the provisioned products of the (portfolio, product) pair live, and when
/// their owners are warned before they are terminated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", try_from = "ExpiryFields")]
pub struct ExpiryConfig {
    /// The lifetime of a provisioned product launched without an `ExpiryTime`.
    pub default_minutes: Minutes,
    /// The longest lifetime, counted from the launch, that its owner may set (an administrator may
    /// set a later expiry).
    pub max_minutes: Minutes,
    /// How long before its expiry the owner is warned (an `ExpiryWarning` event for each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warning_minutes: Vec<Minutes>,
}

/// An `Expiry` Config as written, checked into an [`ExpiryConfig`].
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ExpiryFields {
    default_minutes: f64,
    max_minutes: f64,
    #[serde(default)]
    warning_minutes: Vec<f64>,
}

/// Longest lifetime an `Expiry` constraint may give: ten years.
const MAX_EXPIRY_MINUTES: f64 = 5_256_000.0;

/// Most warnings an `Expiry` constraint may ask for.
const MAX_WARNINGS: usize = 10;

impl TryFrom<ExpiryFields> for ExpiryConfig {
    type Error = String;

    fn try_from(fields: ExpiryFields) -> Result<Self, String> {
        let minutes = |field: &str, value: f64| {
            if value > 0.0 && value <= MAX_EXPIRY_MINUTES {
                Ok(Minutes((value * 60_000.0).round().max(1.0) as u64))
            } else {
                Err(format!("{field} must be a number of minutes above 0 and at most {MAX_EXPIRY_MINUTES}, not {value}"))
            }
        };
        let default_minutes = minutes("DefaultMinutes", fields.default_minutes)?;
        let max_minutes = minutes("MaxMinutes", fields.max_minutes)?;
        if default_minutes.0 > max_minutes.0 {
            return Err(format!("DefaultMinutes ({}) must not be above MaxMinutes ({})", fields.default_minutes, fields.max_minutes));
        }
        if fields.warning_minutes.len() > MAX_WARNINGS {
            return Err(format!("WarningMinutes has {} items; at most {MAX_WARNINGS} are allowed", fields.warning_minutes.len()));
        }
        let mut warning_minutes = fields.warning_minutes.iter().map(|w| minutes("WarningMinutes", *w)).collect::<Result<Vec<_>, _>>()?;
        warning_minutes.sort_by_key(|w| std::cmp::Reverse(w.0));
        if warning_minutes.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err("WarningMinutes lists a value twice".into());
        }
        Ok(ExpiryConfig { default_minutes, max_minutes, warning_minutes })
    }
}

impl ExpiryConfig {
    /// The lifetime of a provisioned product launched without an expiry, in ms.
    pub fn default_ms(&self) -> i64 {
        self.default_minutes.0 as i64
    }

    /// The longest lifetime its owner may give a provisioned product, in ms.
    pub fn max_ms(&self) -> i64 {
        self.max_minutes.0 as i64
    }

    /// The warning times of an expiry at `expires_at` (ms), earliest first.
    pub fn warning_times(&self, expires_at: i64) -> Vec<i64> {
        self.warning_minutes.iter().map(|w| expires_at - w.0 as i64).collect()
    }
}

/// A duration given in minutes (a JSON number, fractions allowed), kept in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minutes(pub u64);

impl Serialize for Minutes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 % 60_000 {
            0 => serializer.serialize_u64(self.0 / 60_000),
            _ => serializer.serialize_f64(self.0 as f64 / 60_000.0),
        }
    }
}

impl<'de> Deserialize<'de> for Minutes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let minutes = f64::deserialize(deserializer)?;
        if !(minutes > 0.0 && minutes <= MAX_DRIFT_MINUTES) {
            return Err(serde::de::Error::custom(format!("IntervalMinutes must be above 0 and at most {MAX_DRIFT_MINUTES}")));
        }
        Ok(Minutes((minutes * 60_000.0).round().max(1.0) as u64))
    }
}

/// Longest drift interval: a year.
const MAX_DRIFT_MINUTES: f64 = 525_600.0;

/// A setting turned on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// A parsed, validated Config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintConfig {
    /// See [`LaunchConfig`].
    Launch(LaunchConfig),
    /// See [`TemplateConfig`].
    Template(TemplateConfig),
    /// See [`ApprovalConfig`].
    Approval(ApprovalConfig),
    /// See [`StackRegionConfig`].
    StackRegion(StackRegionConfig),
    /// See [`SandboxConfig`].
    Sandbox(SandboxConfig),
    /// See [`DriftConfig`].
    Drift(DriftConfig),
    /// See [`ExpiryConfig`].
    Expiry(ExpiryConfig),
}

impl ConstraintConfig {
    /// Parses and validates the Config text of a constraint of type `kind`.
    pub fn parse(kind: ConstraintType, text: &str) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ConfigError(format!("Config is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ConfigError(format!("Config of a {} constraint must be a JSON object", kind.as_str())));
        }
        let config = match kind {
            ConstraintType::Launch => ConstraintConfig::Launch(from_value(kind, value)?),
            ConstraintType::Template => ConstraintConfig::Template(from_value(kind, value)?),
            ConstraintType::Approval => ConstraintConfig::Approval(from_value(kind, value)?),
            ConstraintType::StackRegion => ConstraintConfig::StackRegion(from_value(kind, value)?),
            ConstraintType::Sandbox => ConstraintConfig::Sandbox(from_value(kind, value)?),
            ConstraintType::Drift => ConstraintConfig::Drift(from_value(kind, value)?),
            ConstraintType::Expiry => ConstraintConfig::Expiry(from_value(kind, value)?),
        };
        config.validate()?;
        Ok(config)
    }

    /// The type of constraint this Config belongs to.
    pub fn constraint_type(&self) -> ConstraintType {
        match self {
            ConstraintConfig::Launch(_) => ConstraintType::Launch,
            ConstraintConfig::Template(_) => ConstraintType::Template,
            ConstraintConfig::Approval(_) => ConstraintType::Approval,
            ConstraintConfig::StackRegion(_) => ConstraintType::StackRegion,
            ConstraintConfig::Sandbox(_) => ConstraintType::Sandbox,
            ConstraintConfig::Drift(_) => ConstraintType::Drift,
            ConstraintConfig::Expiry(_) => ConstraintType::Expiry,
        }
    }

    /// The canonical JSON text, as stored and returned by `GetConstraint`.
    pub fn to_json(&self) -> String {
        match self {
            ConstraintConfig::Launch(c) => serde_json::to_string(c),
            ConstraintConfig::Template(c) => serde_json::to_string(c),
            ConstraintConfig::Approval(c) => serde_json::to_string(c),
            ConstraintConfig::StackRegion(c) => serde_json::to_string(c),
            ConstraintConfig::Sandbox(c) => serde_json::to_string(c),
            ConstraintConfig::Drift(c) => serde_json::to_string(c),
            ConstraintConfig::Expiry(c) => serde_json::to_string(c),
        }
        .expect("configs serialise")
    }

    /// The type-specific fields of a `ConstraintSummaries` entry of `ListLaunchOptions`.
    pub fn summary_fields(&self) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        match self {
            ConstraintConfig::Approval(c) => {
                out.insert("OperationTypes".into(), json!(c.operation_types));
            }
            ConstraintConfig::StackRegion(c) => {
                out.insert("StackRegions".into(), json!(c.stack_regions));
            }
            ConstraintConfig::Sandbox(c) => {
                out.insert("Network".into(), json!(c.network));
            }
            ConstraintConfig::Drift(c) => {
                out.insert("IntervalMinutes".into(), json!(c.interval_minutes));
                out.insert("Remediation".into(), json!(c.remediation));
            }
            ConstraintConfig::Expiry(c) => {
                out.insert("DefaultMinutes".into(), json!(c.default_minutes));
                out.insert("MaxMinutes".into(), json!(c.max_minutes));
            }
            ConstraintConfig::Launch(_) | ConstraintConfig::Template(_) => {}
        }
        out
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self {
            ConstraintConfig::Launch(c) => check_name("LocalRoleName", &c.local_role_name),
            ConstraintConfig::Template(c) => {
                check_count("Parameters", c.parameters.len())?;
                for (name, rule) in &c.parameters {
                    check_text(&format!("Parameters key {name:?}"), name, 128)?;
                    let field = format!("Parameters.{name}.AllowedValues");
                    check_count(&field, rule.allowed_values.len())?;
                    check_unique(&field, &rule.allowed_values)?;
                    for v in &rule.allowed_values {
                        if v.chars().count() > 4096 {
                            return Err(ConfigError(format!("{field} holds a value longer than 4096 characters")));
                        }
                    }
                }
                Ok(())
            }
            ConstraintConfig::Approval(c) => {
                check_count("OperationTypes", c.operation_types.len())?;
                check_unique("OperationTypes", &c.operation_types)?;
                if c.covers(OperationType::DetectProvisionedProductDrift) {
                    return Err(ConfigError(
                        "OperationTypes cannot hold DetectProvisionedProductDrift: a drift check changes nothing".into(),
                    ));
                }
                check_count("Approvers", c.approvers.len())?;
                check_unique("Approvers", &c.approvers.iter().map(|a| (&a.principal_type, &a.id, &a.pattern)).collect::<Vec<_>>())?;
                c.approvers.iter().enumerate().try_for_each(|(i, a)| a.validate(i + 1))
            }
            ConstraintConfig::StackRegion(c) => {
                check_count("StackRegions", c.stack_regions.len())?;
                check_unique("StackRegions", &c.stack_regions)?;
                for region in &c.stack_regions {
                    let ok = !region.is_empty()
                        && region.len() <= 64
                        && region.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
                    if !ok {
                        return Err(ConfigError(format!("StackRegions holds {region:?}, which is not a region id")));
                    }
                }
                Ok(())
            }
            ConstraintConfig::Sandbox(_) | ConstraintConfig::Drift(_) | ConstraintConfig::Expiry(_) => Ok(()),
        }
    }
}

impl TemplateConfig {
    /// Checks the value passed for variable `name`; variables without a rule pass.
    pub fn check(&self, name: &str, value: &str) -> Result<(), String> {
        match self.parameters.get(name) {
            Some(rule) if !rule.allowed_values.iter().any(|v| v == value) => {
                Err(format!("The value {value:?} of parameter {name} is not allowed; allowed values: {}.", rule.allowed_values.join(", ")))
            }
            _ => Ok(()),
        }
    }
}

impl StackRegionConfig {
    /// Whether products may be provisioned in `region`.
    pub fn allows(&self, region: &str) -> bool {
        self.stack_regions.iter().any(|r| r == region)
    }
}

impl ApprovalConfig {
    /// Whether `operation` needs approval.
    pub fn covers(&self, operation: OperationType) -> bool {
        self.operation_types.contains(&operation)
    }

    /// Whether the user `user` (member of `roles`) is one of the approvers.
    pub fn is_approver(&self, user: &Principal, roles: &[RoleRef]) -> bool {
        self.approvers.iter().any(|a| a.matches(user, roles))
    }
}

impl Approver {
    /// Whether this entry designates `user` (member of `roles`).
    pub fn matches(&self, user: &Principal, roles: &[RoleRef]) -> bool {
        let hit = |id: &str, name: &str| match (&self.id, &self.pattern) {
            (Some(want), _) => want == id,
            (None, Some(pattern)) => pattern_matches(pattern, name),
            (None, None) => false,
        };
        match self.principal_type.as_str() {
            RAM_USER => user.principal_type == RAM_USER && hit(&user.principal_id, &user.name),
            RAM_ROLE => roles.iter().any(|r| hit(&r.role_id, &r.name)),
            _ => false,
        }
    }

    fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let at = format!("Approvers[{index}]");
        if self.principal_type != RAM_USER && self.principal_type != RAM_ROLE {
            return Err(ConfigError(format!("{at}.Type must be RamUser or RamRole, not {:?}", self.principal_type)));
        }
        match (&self.id, &self.pattern) {
            (Some(id), None) => check_text(&format!("{at}.Id"), id, 64),
            (None, Some(pattern)) => check_text(&format!("{at}.Pattern"), pattern, 128),
            _ => Err(ConfigError(format!("{at} needs exactly one of Id and Pattern"))),
        }
    }
}

/// Parses a Config object into `T`, naming the constraint type in the message.
/// The parsed constraints of a (portfolio, product) launch option. A stored Config that no longer
/// parses is an internal error, not a silent pass.
pub async fn configs(store: &Store, portfolio_id: &str, product_id: &str) -> Result<Vec<ConstraintConfig>, StoreError> {
    store
        .constraints_for(portfolio_id, product_id)
        .await?
        .into_iter()
        .map(|c| {
            c.constraint_type
                .parse::<ConstraintType>()
                .ok()
                .and_then(|kind| ConstraintConfig::parse(kind, &c.config).ok())
                .ok_or_else(|| StoreError::Database(format!("stored {} constraint Config does not parse", c.constraint_type).into()))
        })
        .collect()
}

/// The launch role of the (portfolio, product) `Launch` constraint, if any.
pub async fn launch_role_for(store: &Store, portfolio_id: &str, product_id: &str) -> Result<Option<String>, StoreError> {
    Ok(configs(store, portfolio_id, product_id).await?.into_iter().find_map(|c| match c {
        ConstraintConfig::Launch(l) => Some(l.local_role_name),
        _ => None,
    }))
}

/// Ids of the `Launch` constraints naming the launch role `name`.
pub async fn constraints_using_launch_role(store: &Store, name: &str) -> Result<Vec<String>, StoreError> {
    Ok(store
        .constraints_of_type(ConstraintType::Launch.as_str())
        .await?
        .into_iter()
        .filter(|(_, config)| {
            matches!(ConstraintConfig::parse(ConstraintType::Launch, config), Ok(ConstraintConfig::Launch(c)) if c.local_role_name == name)
        })
        .map(|(id, _)| id)
        .collect())
}

fn from_value<T: serde::de::DeserializeOwned>(kind: ConstraintType, value: Value) -> Result<T, ConfigError> {
    serde_json::from_value(value).map_err(|e| ConfigError(format!("Config of a {} constraint is invalid: {e}", kind.as_str())))
}

fn check_count(field: &str, count: usize) -> Result<(), ConfigError> {
    match count {
        0 => Err(ConfigError(format!("{field} must not be empty"))),
        n if n > MAX_ITEMS => Err(ConfigError(format!("{field} has {n} items; at most {MAX_ITEMS} are allowed"))),
        _ => Ok(()),
    }
}

fn check_unique<T: Ord + fmt::Debug>(field: &str, items: &[T]) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    match items.iter().find(|item| !seen.insert(*item)) {
        Some(dup) => Err(ConfigError(format!("{field} lists {dup:?} twice"))),
        None => Ok(()),
    }
}

fn check_text(field: &str, text: &str, max: usize) -> Result<(), ConfigError> {
    let n = text.chars().count();
    if n == 0 || n > max {
        return Err(ConfigError(format!("{field} must be 1 to {max} characters long")));
    }
    Ok(())
}

/// A launch role name: 1–64 letters, digits, `-`, `_` or `.`.
pub fn check_name(field: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ConfigError(format!("{field} {name:?} is not a valid name: use 1-64 letters, digits, '-', '_' or '.'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: &str, text: &str) -> Result<ConstraintConfig, ConfigError> {
        ConstraintConfig::parse(kind.parse()?, text)
    }

    fn user(id: &str, name: &str) -> Principal {
        Principal { principal_id: id.into(), principal_type: RAM_USER.into(), name: name.into(), is_admin: false, created_at: 0 }
    }

    #[test]
    fn every_example_config_parses_as_its_type() {
        for kind in ConstraintType::ALL {
            ConstraintConfig::parse(*kind, example_config(*kind)).unwrap();
        }
    }

    #[test]
    fn launch_configs_name_a_role() {
        let c = parse("Launch", r#"{"LocalRoleName":"deployer"}"#).unwrap();
        assert_eq!(c, ConstraintConfig::Launch(LaunchConfig { local_role_name: "deployer".into() }));
        assert_eq!(c.to_json(), r#"{"LocalRoleName":"deployer"}"#);
        assert!(parse("Launch", r#"{"LocalRoleName":"a b"}"#).unwrap_err().0.contains("LocalRoleName"));
        assert!(parse("Launch", r#"{"LocalRoleName":"x","Extra":1}"#).unwrap_err().0.contains("Extra"));
        assert!(parse("Launch", r#"{}"#).unwrap_err().0.contains("LocalRoleName"));
        assert!(parse("Launch", r#"["x"]"#).unwrap_err().0.contains("JSON object"));
        assert!(parse("Launch", "{").unwrap_err().0.contains("not valid JSON"));
        assert!(parse("Other", "{}").unwrap_err().0.contains("is not one of"));
    }

    #[test]
    fn template_configs_restrict_values() {
        let c = parse("Template", r#"{"Parameters":{"size":{"AllowedValues":["s","m"]}}}"#).unwrap();
        let ConstraintConfig::Template(t) = &c else { panic!("{c:?}") };
        assert!(t.check("size", "m").is_ok());
        assert!(t.check("size", "xl").unwrap_err().contains("s, m"));
        assert!(t.check("other", "anything").is_ok());
        assert!(c.summary_fields().is_empty());
        assert!(parse("Template", r#"{"Parameters":{}}"#).unwrap_err().0.contains("Parameters must not be empty"));
        assert!(parse("Template", r#"{"Parameters":{"a":{"AllowedValues":[]}}}"#).unwrap_err().0.contains("empty"));
        assert!(parse("Template", r#"{"Parameters":{"a":{"AllowedValues":["x","x"]}}}"#).unwrap_err().0.contains("twice"));
        assert!(parse("Template", r#"{"Parameters":{"a":{"AllowedValues":[1]}}}"#).is_err());
    }

    #[test]
    fn approval_configs_name_operations_and_approvers() {
        let text = r#"{"OperationTypes":["LaunchProduct","TerminateProvisionedProduct"],
            "Approvers":[{"Type":"RamUser","Id":"42"},{"Type":"RamRole","Pattern":"ops-*"}]}"#;
        let c = parse("Approval", text).unwrap();
        let ConstraintConfig::Approval(a) = &c else { panic!("{c:?}") };
        assert!(a.covers(OperationType::LaunchProduct));
        assert!(!a.covers(OperationType::UpdateProvisionedProduct));
        assert!(a.is_approver(&user("42", "x"), &[]));
        assert!(!a.is_approver(&user("43", "x"), &[]));
        let ops = RoleRef { role_id: "7".into(), name: "ops-east".into() };
        assert!(a.is_approver(&user("43", "x"), &[ops]));
        assert_eq!(c.summary_fields()["OperationTypes"], json!(["LaunchProduct", "TerminateProvisionedProduct"]));
        assert_eq!(parse("Approval", &c.to_json()).unwrap(), c);

        let bad = |t: &str| parse("Approval", t).unwrap_err().0;
        assert!(bad(r#"{"OperationTypes":["Launch"],"Approvers":[{"Type":"RamUser","Id":"1"}]}"#).contains("Launch"));
        assert!(bad(r#"{"OperationTypes":[],"Approvers":[{"Type":"RamUser","Id":"1"}]}"#).contains("OperationTypes"));
        assert!(bad(r#"{"OperationTypes":["LaunchProduct"],"Approvers":[]}"#).contains("Approvers"));
        assert!(bad(r#"{"OperationTypes":["LaunchProduct"],"Approvers":[{"Type":"Group","Id":"1"}]}"#).contains("RamUser or RamRole"));
        assert!(bad(r#"{"OperationTypes":["LaunchProduct"],"Approvers":[{"Type":"RamUser"}]}"#).contains("exactly one"));
        assert!(
            bad(r#"{"OperationTypes":["LaunchProduct"],"Approvers":[{"Type":"RamUser","Id":"1","Pattern":"*"}]}"#).contains("exactly one")
        );
    }

    #[test]
    fn stack_region_configs_list_regions() {
        let c = parse("StackRegion", r#"{"StackRegions":["cn-hangzhou","cn-beijing"]}"#).unwrap();
        assert_eq!(c.summary_fields()["StackRegions"], json!(["cn-hangzhou", "cn-beijing"]));
        assert_eq!(c.constraint_type(), ConstraintType::StackRegion);
        assert!(parse("StackRegion", r#"{"StackRegions":["CN HZ"]}"#).unwrap_err().0.contains("region id"));
        assert!(parse("StackRegion", r#"{"StackRegions":[]}"#).is_err());
        assert!(parse("StackRegion", r#"{"StackRegions":"cn-hangzhou"}"#).is_err());
    }

    #[test]
    fn drift_configs_take_minutes_and_a_remediation() {
        let c = parse("Drift", r#"{"IntervalMinutes":90,"Remediation":"Reapply"}"#).unwrap();
        let ConstraintConfig::Drift(d) = &c else { panic!("{c:?}") };
        assert_eq!((d.interval_minutes, d.remediation), (Minutes(90 * 60_000), Remediation::Reapply));
        assert_eq!(c.to_json(), r#"{"IntervalMinutes":90,"Remediation":"Reapply"}"#);
        let short = parse("Drift", r#"{"IntervalMinutes":0.05}"#).unwrap();
        assert_eq!(short, ConstraintConfig::Drift(DriftConfig { interval_minutes: Minutes(3_000), remediation: Remediation::None }));
        assert_eq!(parse("Drift", &short.to_json()).unwrap(), short);
        assert!(parse("Drift", r#"{"IntervalMinutes":0}"#).unwrap_err().0.contains("above 0"));
        assert!(parse("Drift", r#"{"IntervalMinutes":60,"Remediation":"Destroy"}"#).is_err());
        let planned = parse("Drift", r#"{"IntervalMinutes":60,"Remediation":"ReapplyWithApproval"}"#).unwrap();
        assert!(matches!(planned, ConstraintConfig::Drift(DriftConfig { remediation: Remediation::ReapplyWithApproval, .. })));
        assert!(parse("Drift", r#"{}"#).unwrap_err().0.contains("IntervalMinutes"));
        let approval = r#"{"OperationTypes":["DetectProvisionedProductDrift"],"Approvers":[{"Type":"RamUser","Id":"1"}]}"#;
        assert!(parse("Approval", approval).unwrap_err().0.contains("changes nothing"));
    }

    #[test]
    fn expiry_configs_take_a_default_a_maximum_and_warnings() {
        let c = parse("Expiry", r#"{"DefaultMinutes":60,"MaxMinutes":1440,"WarningMinutes":[5,30]}"#).unwrap();
        let ConstraintConfig::Expiry(e) = &c else { panic!("{c:?}") };
        assert_eq!((e.default_ms(), e.max_ms()), (3_600_000, 86_400_000));
        assert_eq!(e.warning_times(10_000_000), vec![10_000_000 - 1_800_000, 10_000_000 - 300_000], "earliest first");
        assert_eq!(c.to_json(), r#"{"DefaultMinutes":60,"MaxMinutes":1440,"WarningMinutes":[30,5]}"#);
        assert_eq!(parse("Expiry", &c.to_json()).unwrap(), c);
        assert_eq!(c.summary_fields()["MaxMinutes"], json!(1440));
        let short = parse("Expiry", r#"{"DefaultMinutes":1,"MaxMinutes":1.5}"#).unwrap();
        assert_eq!(short.to_json(), r#"{"DefaultMinutes":1,"MaxMinutes":1.5}"#);
        let bad = |t: &str| parse("Expiry", t).unwrap_err().0;
        assert!(bad(r#"{"DefaultMinutes":0,"MaxMinutes":10}"#).contains("DefaultMinutes must be a number of minutes above 0"));
        assert!(bad(r#"{"DefaultMinutes":1,"MaxMinutes":-3}"#).contains("MaxMinutes must be"));
        assert!(bad(r#"{"DefaultMinutes":20,"MaxMinutes":10}"#).contains("must not be above MaxMinutes"));
        assert!(bad(r#"{"DefaultMinutes":1,"MaxMinutes":10,"WarningMinutes":[0]}"#).contains("WarningMinutes must be"));
        assert!(bad(r#"{"DefaultMinutes":1,"MaxMinutes":10,"WarningMinutes":[2,2]}"#).contains("twice"));
        assert!(bad(r#"{"DefaultMinutes":1,"MaxMinutes":6000000}"#).contains("at most"));
        assert!(bad(r#"{"MaxMinutes":10}"#).contains("DefaultMinutes"));
        assert!(bad(r#"{"DefaultMinutes":1,"MaxMinutes":10,"Grace":1}"#).contains("Grace"));
        assert!(bad(r#"{"DefaultMinutes":"1","MaxMinutes":10}"#).contains("invalid"));
    }
}
