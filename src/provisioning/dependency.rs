//! Dependencies between provisioned products (an extension). A launch or update parameter value
//! may take text from an output of another live provisioned product the caller may read:
//! `${provisioned-product:<ProvisionedProductId>.output:<OutputKey>}`, anywhere in the value, as
//! often as wanted; `$${provisioned-product:` is the literal text `${provisioned-product:`, and
//! any other `$` is itself. References are resolved when the task (or a plan's preview) is
//! queued, from the upstream's last successful launch or update; the task records the value as
//! given beside the resolved one ([`ParameterReference`]). Refused: unknown or unreadable
//! products, missing or sensitive outputs, references in sensitive parameters, self references
//! and cycles. A parameter an update does not give keeps its references, resolved again.
//! When an upstream's outputs change, the store marks its dependents stale; the scheduler's
//! `DependencyUpdate` job ([`Provisioner::dependent_step`]) updates those whose update policy
//! follows (after their own upstreams are done changing), on behalf of their owners.

use std::collections::{BTreeMap, BTreeSet};

use super::queue::Provisioner;
use crate::catalog::error::DomainError;
use crate::engine::redact::MASK;
use crate::model::{OperationType, ProvisionedProductStatus};
use crate::store::dependency::{value_hash, Dependency, OutputRead, ParameterReference};
use crate::store::principal::Principal;
use crate::store::provisioning::ProvisionedProduct;

/// What opens a reference.
const OPEN: &str = "${provisioned-product:";
/// What separates the provisioned product from the output.
const OUTPUT: &str = ".output:";

/// A reference to an output of a provisioned product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub provisioned_product_id: String,
    pub output_key: String,
}

/// A piece of a parameter value: text, or a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Reference(Reference),
}

/// A parameter value cut into text and references; the error says what is malformed.
pub fn parse(value: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = value;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('$').and_then(|r| r.strip_prefix(OPEN)) {
            text.push_str(OPEN);
            rest = after;
        } else if let Some(after) = rest.strip_prefix(OPEN) {
            let end = after.find('}').ok_or_else(|| format!("a reference {OPEN}… is not closed with }}"))?;
            let (id, key) = after[..end].split_once(OUTPUT).ok_or_else(|| {
                format!("the reference {OPEN}{}}} does not name an output: write {OPEN}pp-….output:Name}}", &after[..end])
            })?;
            let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !word(id) || !word(key) {
                return Err(format!("the reference {OPEN}{}}} names no provisioned product or output", &after[..end]));
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Reference(Reference { provisioned_product_id: id.into(), output_key: key.into() }));
            rest = &after[end + 1..];
        } else {
            let c = rest.chars().next().expect("not empty");
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// The edge path from `start` back to `target` through upstreams, if any: `target` reading
/// `start` would close it into a cycle. `edges` of `target` itself are left out (its change
/// replaces them).
pub fn find_cycle(edges: &[Dependency], target: &str, start: &str) -> Option<Vec<String>> {
    let mut upstreams: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in edges.iter().filter(|e| e.dependent_id != target) {
        upstreams.entry(e.dependent_id.as_str()).or_default().insert(e.upstream_id.as_str());
    }
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![start]];
    while let Some(path) = stack.pop() {
        let last = *path.last().expect("paths are not empty");
        if last == target {
            return Some(path.into_iter().map(String::from).collect());
        }
        if !seen.insert(last) {
            continue;
        }
        for next in upstreams.get(last).into_iter().flatten() {
            let mut longer = path.clone();
            longer.push(next);
            stack.push(longer);
        }
    }
    None
}

/// `InvalidParameter.Parameters` for a change of `target` whose reads close a cycle that formed
/// after they were checked (another change made at the same time, or after a plan's preview).
pub fn cycle_formed(target: &str) -> DomainError {
    DomainError::invalid_parameter(
        "Parameters",
        format!("The parameters read outputs of provisioned products that now depend on {target}: the change would make a cycle."),
    )
}

/// `InvalidParameter.Parameters` about the parameter `key`.
fn refuse(key: &str, why: String) -> DomainError {
    DomainError::invalid_parameter("Parameters", format!("The parameter {key}: {why}."))
}

/// The given parameters with their references resolved, and what they were resolved from.
pub struct Dereferenced {
    pub parameters: Vec<(String, String)>,
    pub references: Vec<ParameterReference>,
}

/// What the scheduler does with a stale provisioned product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependentStep {
    /// Nothing more: gone, not stale, or its policy only marks it.
    Forget,
    /// Wait: it or an upstream of it is changing (or about to be updated).
    Wait,
    /// Update it now.
    Update,
}

impl Provisioner<'_> {
    /// Resolves the references in `given` for `principal`, for a change of `target` (`None`: a
    /// launch). Values without references are as given (escapes undone).
    pub async fn dereference(
        &self,
        principal: &Principal,
        target: Option<&str>,
        given: Vec<(String, String)>,
    ) -> Result<Dereferenced, DomainError> {
        let mut parameters = Vec::with_capacity(given.len());
        let mut references = Vec::new();
        let mut edges: Option<Vec<Dependency>> = None;
        for (key, value) in given {
            if !value.contains(OPEN) {
                parameters.push((key, value));
                continue;
            }
            let pieces = parse(&value).map_err(|e| refuse(&key, e))?;
            let mut resolved = String::new();
            let mut reads = Vec::new();
            for piece in pieces {
                let r = match piece {
                    Piece::Text(text) => {
                        resolved.push_str(&text);
                        continue;
                    }
                    Piece::Reference(r) => r,
                };
                if target == Some(r.provisioned_product_id.as_str()) {
                    return Err(refuse(&key, "a provisioned product cannot read its own outputs".into()));
                }
                let output = self.upstream_output(principal, &key, &r).await?;
                if let Some(target) = target {
                    let all = match &edges {
                        Some(all) => all,
                        None => edges.insert(self.store.dependencies().await?),
                    };
                    if let Some(path) = find_cycle(all, target, &r.provisioned_product_id) {
                        let mut cycle = vec![target.to_string()];
                        cycle.extend(path);
                        return Err(refuse(
                            &key,
                            format!("reading {} would make a cycle: {}", r.provisioned_product_id, cycle.join(" → ")),
                        ));
                    }
                }
                reads.push(OutputRead {
                    provisioned_product_id: r.provisioned_product_id,
                    output_key: r.output_key,
                    value_hash: value_hash(&output),
                });
                resolved.push_str(&output);
            }
            if !reads.is_empty() {
                references.push(ParameterReference { parameter_key: key.clone(), parameter_value: value, reads });
            }
            parameters.push((key, resolved));
        }
        Ok(Dereferenced { parameters, references })
    }

    /// The value of the output `r` names, for `principal` resolving the parameter `key`.
    async fn upstream_output(&self, principal: &Principal, key: &str, r: &Reference) -> Result<String, DomainError> {
        let id = &r.provisioned_product_id;
        let unknown = || refuse(key, format!("the provisioned product {id} does not exist or you may not read it"));
        let upstream = self.store.provisioned_product(id).await?.ok_or_else(unknown)?;
        super::check_owner(principal, &upstream).map_err(|_| unknown())?;
        let task = match &upstream.last_successful_provisioning_task_id {
            Some(task) => self.store.task(task).await?,
            None => None,
        };
        let outputs: Vec<super::Output> = task.map(|t| super::stored(&t.outputs)).unwrap_or_default();
        let Some(output) = outputs.iter().find(|o| o.output_key == r.output_key) else {
            let names: Vec<&str> = outputs.iter().map(|o| o.output_key.as_str()).collect();
            return Err(refuse(
                key,
                format!(
                    "the provisioned product {id} has no output {:?} (its outputs: {})",
                    r.output_key,
                    if names.is_empty() { "none yet".to_string() } else { names.join(", ") }
                ),
            ));
        };
        match output.output_value.as_deref() {
            Some(MASK) => {
                Err(refuse(key, format!("the output {:?} of {id} is sensitive: it cannot be copied into parameters", r.output_key)))
            }
            Some(value) => Ok(value.to_string()),
            None => Err(refuse(key, format!("the output {:?} of {id} has no value", r.output_key))),
        }
    }

    /// The references `pp`'s last launch or update recorded (what an update that does not give
    /// those parameters resolves again).
    pub async fn references_of(&self, pp: &ProvisionedProduct) -> Result<Vec<ParameterReference>, DomainError> {
        let Some(id) = &pp.last_provisioning_task_id else { return Ok(Vec::new()) };
        Ok(match self.store.task(id).await? {
            Some(task) if matches!(task.task_type, OperationType::LaunchProduct | OperationType::UpdateProvisionedProduct) => {
                crate::store::dependency::references_from_json(&task.parameter_references)
            }
            _ => Vec::new(),
        })
    }

    /// The outputs `pp` (which `principal` may see) reads, and the live provisioned products
    /// reading its outputs.
    pub async fn dependencies(
        &self,
        principal: &Principal,
        pp: &ProvisionedProduct,
    ) -> Result<(Vec<Dependency>, Vec<ProvisionedProduct>), DomainError> {
        super::check_owner(principal, pp)?;
        let id = &pp.provisioned_product_id;
        Ok((self.store.upstreams_of(id).await?, self.store.dependents_of(id).await?))
    }

    /// Refuses to terminate `pp` while live provisioned products read its outputs (unless
    /// `force`), naming them.
    pub async fn check_no_dependents(&self, pp: &ProvisionedProduct, force: bool) -> Result<(), DomainError> {
        if force {
            return Ok(());
        }
        let dependents = self.store.dependents_of(&pp.provisioned_product_id).await?;
        if dependents.is_empty() {
            return Ok(());
        }
        let names: Vec<String> =
            dependents.iter().map(|d| format!("{} ({})", d.provisioned_product_id, d.provisioned_product_name)).collect();
        Err(DomainError::invalid_status(
            "ProvisionedProduct",
            format!(
                "The provisioned product {} has dependents that read its outputs: {}. Terminate or update them first, or \
                 pass Force=true.",
                pp.provisioned_product_id,
                names.join(", ")
            ),
        ))
    }

    /// What the scheduler does now with the stale `pp`, whose update policy follows
    /// (`follows`): update it once neither it nor any upstream of it (transitively) is changing
    /// or stale and following.
    pub async fn dependent_step(
        &self,
        pp: &ProvisionedProduct,
        follows: impl Fn(&ProvisionedProduct) -> bool,
    ) -> Result<DependentStep, DomainError> {
        if pp.stale_dependencies == 0 || !follows(pp) {
            return Ok(DependentStep::Forget);
        }
        if pp.status == ProvisionedProductStatus::UnderChange {
            return Ok(DependentStep::Wait);
        }
        let edges = self.store.dependencies().await?;
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = vec![pp.provisioned_product_id.to_string()];
        while let Some(id) = stack.pop() {
            for e in edges.iter().filter(|e| e.dependent_id == id) {
                if !seen.insert(e.upstream_id.clone()) {
                    continue;
                }
                if let Some(up) = self.store.provisioned_product(&e.upstream_id).await? {
                    if up.status == ProvisionedProductStatus::UnderChange || (up.stale_dependencies > 0 && follows(&up)) {
                        return Ok(DependentStep::Wait);
                    }
                }
                stack.push(e.upstream_id.clone());
            }
        }
        Ok(DependentStep::Update)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, key: &str) -> Piece {
        Piece::Reference(Reference { provisioned_product_id: id.into(), output_key: key.into() })
    }

    fn text(s: &str) -> Piece {
        Piece::Text(s.into())
    }

    #[test]
    fn references_parse_anywhere_and_escape_with_a_dollar() {
        assert_eq!(parse("plain ${var} $$x").unwrap(), vec![text("plain ${var} $$x")]);
        assert_eq!(parse("${provisioned-product:pp-a1.output:vpc_id}").unwrap(), vec![r("pp-a1", "vpc_id")]);
        assert_eq!(
            parse("db-${provisioned-product:pp-a.output:name}.${provisioned-product:pp-b.output:zone}").unwrap(),
            vec![text("db-"), r("pp-a", "name"), text("."), r("pp-b", "zone")]
        );
        assert_eq!(parse("$${provisioned-product:pp-a.output:x}").unwrap(), vec![text("${provisioned-product:pp-a.output:x}")]);
        assert_eq!(parse("$$${provisioned-product:pp-a.output:x}").unwrap(), vec![text("$${provisioned-product:pp-a.output:x}")]);
        assert!(parse("${provisioned-product:pp-a.output:x").unwrap_err().contains("not closed"));
        assert!(parse("${provisioned-product:pp-a}").unwrap_err().contains("does not name an output"));
        assert!(parse("${provisioned-product:pp a.output:x}").unwrap_err().contains("names no"));
        assert!(parse("${provisioned-product:.output:x}").unwrap_err().contains("names no"));
    }

    fn edge(dependent: &str, upstream: &str) -> Dependency {
        Dependency {
            dependent_id: dependent.into(),
            upstream_id: upstream.into(),
            output_key: "o".into(),
            value_hash: String::new(),
            stale: 0,
            created_at: 0,
        }
    }

    #[test]
    fn a_cycle_is_found_through_upstreams_and_the_targets_own_edges_do_not_count() {
        // b reads a, c reads b.
        let edges = [edge("b", "a"), edge("c", "b")];
        assert_eq!(find_cycle(&edges, "a", "c"), Some(vec!["c".into(), "b".into(), "a".into()]));
        assert_eq!(find_cycle(&edges, "a", "b"), Some(vec!["b".into(), "a".into()]));
        assert_eq!(find_cycle(&edges, "c", "a"), None);
        // b's edge to a is what b's change replaces: b reading c then is a cycle only through c.
        assert_eq!(find_cycle(&edges, "b", "a"), None);
        assert_eq!(find_cycle(&edges, "b", "c"), Some(vec!["c".into(), "b".into()]));
    }
}
