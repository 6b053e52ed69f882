//! The typed vocabulary every layer shares: resource ids that cannot be mixed up, and the enums
//! the API spells as strings (task types and statuses, provisioned product and plan statuses).
//! Each type reads and writes its wire spelling (serde, `Display`, `FromStr`); the store maps
//! them to text columns.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

/// A region this installation offers (`ListRegions`, and where tasks may run).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Region {
    /// e.g. `cn-hangzhou`.
    pub region_id: String,
    /// Display name.
    pub local_name: String,
    /// Endpoint serving the region.
    pub region_endpoint: String,
}

impl Region {
    /// The region's name in English for pages (`LocalName` is the vendor's, in Chinese), or its
    /// id when the region is not one of the vendor's.
    pub fn english_name(&self) -> &str {
        english_region_name(&self.region_id)
    }
}

/// The English name of the region `id`, or `id` when it is not one of the vendor's.
pub fn english_region_name(id: &str) -> &str {
    match id {
        "cn-hangzhou" => "China (Hangzhou)",
        "cn-shanghai" => "China (Shanghai)",
        "cn-beijing" => "China (Beijing)",
        "cn-shenzhen" => "China (Shenzhen)",
        "cn-hongkong" => "China (Hong Kong)",
        "ap-southeast-1" => "Singapore",
        "us-west-1" => "US (Silicon Valley)",
        "eu-central-1" => "Germany (Frankfurt)",
        other => other,
    }
}

/// The words of a resource kind for messages: `ProvisionedProduct` → `provisioned product`.
pub fn kind_words(kind: &str) -> String {
    let mut words = String::with_capacity(kind.len() + 4);
    for (i, c) in kind.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    words
}

/// A new resource id: the service's prefix and 14 lower-case letters and digits, of which the first
/// 6 count milliseconds and the other 8 are random ([`id_at`]).
pub fn new_id(prefix: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    id_at(prefix, now.as_millis() as u64, &mut rand::thread_rng())
}

/// The letters and digits of an id's suffix, in their sort order.
const ID_DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The id [`new_id`] mints at `ms` since the epoch: the milliseconds modulo 36⁶ (25 days) in 6
/// base-36 digits, then 8 random ones. Ids minted one after the other sort one after the other
/// (until the count wraps, and from there on again), so each insert adds to the page of the id
/// index that the last one did rather than to a random page: with wholly random ids every create
/// rewrote a page of each index on a resource id, which doubled the pages a SQLite write puts in
/// its log (docs/benchmarks.md). The 36⁸ (2.8 × 10¹²) random suffixes of one millisecond keep
/// the ids of every node distinct.
fn id_at(prefix: &str, ms: u64, rng: &mut impl Rng) -> String {
    let mut suffix = [0u8; 14];
    let mut count = ms % 36u64.pow(6);
    for digit in suffix[..6].iter_mut().rev() {
        *digit = ID_DIGITS[(count % 36) as usize];
        count /= 36;
    }
    suffix[6..].iter_mut().for_each(|digit| *digit = ID_DIGITS[rng.gen_range(0..ID_DIGITS.len())]);
    format!("{prefix}-{}", std::str::from_utf8(&suffix).expect("ASCII digits"))
}

/// `yyyy-MM-ddTHH:mm:ssZ` from ms since the epoch.
pub fn format_time(ms: i64) -> String {
    // RFC 3339 in whole seconds with `Z` is exactly `yyyy-MM-ddTHH:mm:ssZ`, without parsing a format.
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Declares resource id newtypes over `String`, each with the prefix of the ids it mints.
macro_rules! id {
    ($($(#[$meta:meta])* $name:ident = $prefix:literal;)*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new random id.
            pub fn new() -> Self {
                $name(new_id($prefix))
            }

            /// The id's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($name(s.to_string()))
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    )*};
}

id! {
    /// A provisioned product's id (`pp-…`).
    ProvisionedProductId = "pp";
    /// A task's id (`task-…`).
    TaskId = "task";
    /// A plan's id (`plan-…`).
    PlanId = "plan";
    /// A webhook's id (`wh-…`).
    WebhookId = "wh";
    /// An upgrade campaign's id (`campaign-…`).
    CampaignId = "campaign";
}

/// Declares enums whose variants are spelt on the wire as their names.
macro_rules! wire_enum {
    ($($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),* $(,)? })*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vmeta])* $variant),* }

        impl $name {
            /// Every value, in the order of the API's documentation.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.as_str().to_string()
            }
        }

        impl FromStr for $name {
            type Err = String;
            /// The value spelt `s`; the error names the values there are.
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("The {} {s:?} is not one of {}.", stringify!($name), all.join(", "))
                })
            }
        }
    )*};
}

wire_enum! {
    /// The kinds of constraint, in the order `ListLaunchOptions` reports them.
    ConstraintType {
        /// Terraform runs with a launch role's environment variables.
        Launch,
        /// Template variables restricted to allowed values.
        Template,
        /// Operations need an approver's approval (through plans).
        Approval,
        /// Products may be provisioned only in these regions.
        StackRegion,
        /// How Terraform's sandbox treats the product's jobs.
        Sandbox,
        /// How often the product's provisioned products are checked for drift, and what a check
        /// that finds drift does (an extension).
        Drift,
        /// When the product's provisioned products expire (a default and a maximum lifetime) and
        /// when their owners are warned (an extension).
        Expiry,
    }

    /// What a task or plan does to a provisioned product; `DetectProvisionedProductDrift` (an
    /// extension) is a task's only: a refresh-only plan that changes nothing.
    OperationType { LaunchProduct, UpdateProvisionedProduct, TerminateProvisionedProduct, DetectProvisionedProductDrift }

    /// A provisioned product's drift, as its last drift check found it (an extension).
    DriftStatus {
        /// Terraform's state matches what exists.
        InSync,
        /// Some resources changed outside Terraform.
        Drifted,
        /// The last check failed (its task's `StatusMessage` says why).
        CheckFailed,
        /// No check has run yet.
        NeverChecked,
    }

    /// What a drift check that finds drift does (a `Drift` constraint's `Remediation`).
    Remediation {
        /// Nothing: the drift is recorded and shown.
        None,
        /// Re-applies the provisioned product's version and parameters (an
        /// `UpdateProvisionedProduct` on behalf of its owner; refused, and said, when an
        /// `Approval` constraint covers updates).
        Reapply,
        /// Re-applies them through an update plan on behalf of its owner: the plan waits for the
        /// approvers of an `Approval` constraint covering updates and runs once approved
        /// (without one, it waits for its owner to execute it).
        ReapplyWithApproval,
    }

    /// What a job of the durable scheduler does when it is due.
    ScheduleKind {
        /// Queues drift checks of the provisioned products a `Drift` constraint covers (its subject).
        DriftCheck,
        /// Warns of, then carries out, the expiry of a provisioned product (its subject): a
        /// terminate on behalf of its owner, retried with backoff while it fails.
        Expiry,
        /// Updates a provisioned product (its subject) whose parameters read an upstream output
        /// that changed, once its upstreams are done changing, when its update policy says so.
        DependencyUpdate,
        /// Advances an upgrade campaign (its subject): notes its previews and updates, starts
        /// the next updates of its current wave.
        UpgradeCampaign,
        /// Updates the provisioned products whose policy is `FollowRecommended` to their
        /// product's `Recommended` version (one job, subject `all`).
        FollowRecommended,
    }

    /// What updates a provisioned product besides its owner (an extension).
    UpdatePolicy {
        /// Only its owner, or an administrator's upgrade campaign.
        Manual,
        /// Also the scheduler: to its product's `Recommended` version whenever that changes.
        FollowRecommended,
        /// Only its owner: nothing automatic, and upgrade campaigns skip it.
        Pinned,
    }

    /// A task's status: queued or running, then done or failed.
    TaskStatus { InProgress, Succeeded, Failed }

    /// A provisioned product's status: ready, a task running, or the last task failed.
    ProvisionedProductStatus { Available, UnderChange, Error }

    /// What a webhook is told of (an extension).
    EventType {
        /// A task (launch, update, terminate, or a plan's execution) succeeded.
        TaskSucceeded,
        /// A task failed.
        TaskFailed,
        /// A plan's preview is done and its execution waits for an approver.
        PlanAwaitingApproval,
        /// An approver approved a plan.
        PlanApproved,
        /// An approver rejected a plan.
        PlanRejected,
        /// A drift check found resources changed outside Terraform.
        DriftDetected,
        /// A drift check's remediation queued an update (`Reapply`; its end follows as a task
        /// event) or created an update plan (`ReapplyWithApproval`; its approval and execution
        /// follow as plan and task events).
        DriftRemediationQueued,
        /// A provisioned product expires soon (one of its `Expiry` constraint's warnings).
        ExpiryWarning,
        /// A provisioned product expired: its terminate is queued.
        Expired,
        /// An output a provisioned product's parameters read changed: it is stale (its update
        /// follows as a task event when its update policy says so).
        DependencyStale,
        /// The version a provisioned product runs became `Deprecated`.
        VersionDeprecated,
        /// An upgrade campaign queued the update of a provisioned product (on behalf of its owner).
        CampaignUpdateQueued,
    }

    /// Where an upgrade campaign stands (an extension).
    CampaignStatus {
        /// The updates of its provisioned products are being previewed.
        Planning,
        /// Every preview is done: the summary is ready, the campaign waits to be started.
        Planned,
        /// Upgrading, wave by wave.
        Running,
        /// Paused by an administrator: no update starts until it is resumed.
        Paused,
        /// Stopped by its failure threshold: no update starts until it is resumed.
        Stopped,
        /// Every update ended (or was skipped).
        Completed,
        /// Cancelled by an administrator (final): the updates not started never will.
        Canceled,
    }

    /// Where one provisioned product of an upgrade campaign stands (an extension).
    CampaignItemStatus {
        /// Left out: `Pinned`, terminated, or its updates need an approval (the message says which).
        Skipped,
        /// Its preview is not queued yet.
        Pending,
        /// Its update plan is being previewed.
        Planning,
        /// Previewed: its update waits for its wave.
        Planned,
        /// Its preview failed or could not be made (the message says why).
        PlanFailed,
        /// Its update task runs.
        Updating,
        /// Its update succeeded.
        Succeeded,
        /// Its update failed (the message is the task's).
        Failed,
        /// The campaign was cancelled before its update started.
        Canceled,
    }

    /// Where a webhook delivery stands.
    DeliveryStatus {
        /// Not delivered yet: queued, or waiting for its next attempt.
        Pending,
        /// The endpoint answered 2xx.
        Delivered,
        /// Every attempt failed; no more are made.
        Failed,
    }

    /// A plan's status, from its preview through approval to execution.
    PlanStatus {
        PreviewInProgress,
        PreviewSuccess,
        PreviewFailed,
        ApplicationInProgress,
        ApplicationApproved,
        ApplicationRejected,
        ExecuteInProgress,
        ExecuteSuccess,
        ExecuteFailed,
        Canceled,
    }
}

/// The tool a template's `Transform` names: the vendor's Terraform, or OpenTofu (this
/// service's extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tool {
    /// HashiCorp Terraform (`terraform`).
    Terraform,
    /// OpenTofu (`tofu`).
    OpenTofu,
}

impl Tool {
    /// Its name in a `Transform` and in the first line of its binary's `version` output.
    pub const fn name(self) -> &'static str {
        match self {
            Tool::Terraform => "Terraform",
            Tool::OpenTofu => "OpenTofu",
        }
    }
}

/// A template's `Transform`: the tool and the `major.minor` release line that runs it, spelt
/// `Aliyun::Terraform-v1.5` (the vendor's) or `Aliyun::OpenTofu-v1.8` (this service's extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Transform {
    /// The tool.
    pub tool: Tool,
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl Transform {
    /// How a `Transform` is spelt, for messages.
    pub const SPELLING: &'static str =
        "\"Aliyun::Terraform-v<major>.<minor>\" (e.g. Aliyun::Terraform-v1.5), or \"Aliyun::OpenTofu-v<major>.<minor>\"";

    /// Terraform's release line `major.minor`.
    pub const fn terraform(major: u32, minor: u32) -> Transform {
        Transform { tool: Tool::Terraform, major, minor }
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aliyun::{}-v{}.{}", self.tool.name(), self.major, self.minor)
    }
}

impl FromStr for Transform {
    type Err = String;
    /// The `Transform` spelt `s`; the error says how one is spelt.
    fn from_str(s: &str) -> Result<Self, String> {
        let parsed = [Tool::Terraform, Tool::OpenTofu].into_iter().find_map(|tool| {
            let (major, minor) = s.strip_prefix("Aliyun::")?.strip_prefix(tool.name())?.strip_prefix("-v")?.split_once('.')?;
            let number =
                |p: &str| (!p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse().ok()).flatten();
            Some(Transform { tool, major: number(major)?, minor: number(minor)? })
        });
        parsed.ok_or_else(|| format!("Transform must be {}, not {s:?}.", Transform::SPELLING))
    }
}

impl PlanStatus {
    /// The statuses in which a launch plan reserves its provisioned product's name (from its
    /// execution on, the provisioned product holds it).
    pub const RESERVING_NAME: &[PlanStatus] = &[
        PlanStatus::PreviewInProgress,
        PlanStatus::PreviewSuccess,
        PlanStatus::PreviewFailed,
        PlanStatus::ApplicationInProgress,
        PlanStatus::ApplicationApproved,
    ];

    /// The status a successful preview leads to: approval first when the plan needs it.
    pub fn after_preview(needs_approval: bool) -> PlanStatus {
        if needs_approval {
            PlanStatus::ApplicationInProgress
        } else {
            PlanStatus::PreviewSuccess
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_as_words_and_regions_in_english() {
        assert_eq!(kind_words("ProvisionedProduct"), "provisioned product");
        assert_eq!(kind_words("ProductVersion"), "product version");
        assert_eq!(kind_words("Product"), "product");
        let region = |id: &str| Region { region_id: id.into(), local_name: String::new(), region_endpoint: String::new() };
        assert_eq!(region("cn-hangzhou").english_name(), "China (Hangzhou)");
        assert_eq!(region("local-1").english_name(), "local-1");
    }

    #[test]
    fn ids_have_the_prefix_and_a_random_suffix() {
        let a = TaskId::new();
        assert!(a.starts_with("task-") && a.len() == 19);
        assert!(a[5..].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_ne!(a, TaskId::new());
        assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::json!(a.as_str()));
    }

    #[test]
    fn ids_sort_by_the_millisecond_they_were_minted_in() {
        let mut rng = rand::thread_rng();
        let wrap = 36u64.pow(6);
        let ids: Vec<String> = [0, 1, 35, 36, 1_000, wrap - 1].into_iter().map(|ms| id_at("port", ms, &mut rng)).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        assert_eq!(&ids[0][..11], "port-000000");
        assert_eq!(&ids[3][..11], "port-000010");
        assert_eq!(&ids[5][..11], "port-zzzzzz");
        let now = 1_796_000_000_123;
        assert_eq!(id_at("port", now, &mut rng)[..11], id_at("port", now + wrap, &mut rng)[..11], "the count wraps");
        // The random part: 8 digits of 36, all of them used.
        let tails: std::collections::HashSet<String> = (0..2_000).map(|_| id_at("t", now, &mut rng)[8..].to_string()).collect();
        assert_eq!(tails.len(), 2_000);
        let used: std::collections::HashSet<char> = tails.iter().flat_map(|tail| tail.chars()).collect();
        assert_eq!(used.len(), 36);
    }

    #[test]
    fn transforms_read_and_write_their_spelling() {
        for (text, tool, major, minor) in [
            ("Aliyun::Terraform-v1.5", Tool::Terraform, 1, 5),
            ("Aliyun::Terraform-v0.12", Tool::Terraform, 0, 12),
            ("Aliyun::OpenTofu-v1.8", Tool::OpenTofu, 1, 8),
        ] {
            let transform: Transform = text.parse().unwrap();
            assert_eq!(transform, Transform { tool, major, minor });
            assert_eq!(transform.to_string(), text);
        }
        for text in [
            "Aliyun::Terraform-v1",
            "Aliyun::Terraform-1.5",
            "Aliyun::Terraform-v1.5.7",
            "Aliyun::Terraform-v1.x",
            "Aliyun::Tofu-v1.8",
            "x",
        ] {
            assert!(text.parse::<Transform>().unwrap_err().contains("Transform must be"), "{text}");
        }
    }

    #[test]
    fn enums_read_and_write_their_wire_names() {
        for status in PlanStatus::ALL {
            assert_eq!(status.as_str().parse::<PlanStatus>().unwrap(), *status);
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(status.to_string()));
        }
        assert_eq!(
            "Launch".parse::<OperationType>().unwrap_err(),
            "The OperationType \"Launch\" is not one of LaunchProduct, UpdateProvisionedProduct, TerminateProvisionedProduct, \
             DetectProvisionedProductDrift."
        );
    }
}
