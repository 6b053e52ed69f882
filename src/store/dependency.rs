//! Dependencies between provisioned products (an extension): the edges from a dependent to the
//! upstream outputs its parameters read, each with the hash of the value it resolved and whether
//! that output changed since (`stale`). A launch or update task records the references its
//! parameters were resolved from ([`ParameterReference`], in `tasks.parameter_references`) and
//! replaces its provisioned product's edges in the transaction that queues it; a launch or update
//! of an upstream that succeeds marks the edges whose output changed stale in the transaction
//! that ends it, tells webhooks (`DependencyStale`) and makes the dependent's `DependencyUpdate`
//! job due. The rules (how references are spelt and resolved, which cycles are refused, who
//! updates what) are the provisioning layer's.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::provisioning::{ProvisionedProduct, Task};
use super::sql::{insert, record, sql, Sql, ToBind};
use super::webhook::{enqueue, Event};
use super::{now_ms, Store, StoreResult};
use crate::model::{EventType, OperationType, ScheduleKind, UpdatePolicy};

/// One upstream output a parameter read, and the hash ([`value_hash`]) of the value it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutputRead {
    pub provisioned_product_id: String,
    pub output_key: String,
    pub value_hash: String,
}

/// A parameter whose value was resolved from references: its value as given (with the
/// references) and the outputs it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterReference {
    pub parameter_key: String,
    pub parameter_value: String,
    pub reads: Vec<OutputRead>,
}

/// The references of a task or plan from their stored form (none if it does not parse).
pub fn references_from_json(text: &str) -> Vec<ParameterReference> {
    serde_json::from_str(text).unwrap_or_default()
}

/// References in their stored form.
pub fn references_json(references: &[ParameterReference]) -> String {
    serde_json::to_string(references).expect("references serialise")
}

/// The SHA-256 (hex) of an output's value: what an edge keeps instead of the value.
pub fn value_hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

record! {
    /// An edge: the dependent reads the upstream's output.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Dependency {
        pub dependent_id: String,
        pub upstream_id: String,
        pub output_key: String,
        /// [`value_hash`] of the value the dependent resolved.
        pub value_hash: String,
        /// 1 when the upstream's output changed since the dependent resolved it.
        pub stale: i64,
        pub created_at: i64,
    }
}

/// Replaces the edges of a launch or update `task`'s provisioned product with those its
/// references name, inside `tx` (other tasks leave them as they are).
pub(super) async fn replace_edges(tx: &mut super::Tx, task: &Task) -> StoreResult<()> {
    if !matches!(task.task_type, OperationType::LaunchProduct | OperationType::UpdateProvisionedProduct) {
        return Ok(());
    }
    let dependent = task.provisioned_product_id.as_str();
    sql!("DELETE FROM provisioned_product_dependencies WHERE dependent_id = $1", dependent).execute(&mut **tx).await?;
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    for read in references_from_json(&task.parameter_references).into_iter().flat_map(|r| r.reads) {
        edges.insert((read.provisioned_product_id, read.output_key), read.value_hash);
    }
    if edges.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let rows = edges.into_iter().map(|((upstream_id, output_key), value_hash)| Dependency {
        dependent_id: dependent.to_string(),
        upstream_id,
        output_key,
        value_hash,
        stale: 0,
        created_at: now,
    });
    insert("provisioned_product_dependencies", Dependency::COLUMNS, rows, |d, sql| d.bind_values(sql)).execute(&mut **tx).await?;
    Ok(())
}

/// Whether queueing the update `task` would close a cycle of dependencies: whether its
/// provisioned product is, through the edges of live dependents other than itself (its own are
/// what the update replaces), an upstream of a provisioned product its references read. The
/// rules say which reads are refused before anything is written (the provisioning layer's
/// `find_cycle`); this check, in the transaction that queues the update and after holding the
/// dependency graph ([`super::Tx::hold`]), stops two updates made at once from each closing half
/// of a cycle, and a plan from executing into one that formed after its preview.
pub(super) async fn closes_cycle(tx: &mut super::Tx, task: &Task) -> StoreResult<bool> {
    if task.task_type != OperationType::UpdateProvisionedProduct {
        return Ok(false);
    }
    let upstreams: BTreeSet<String> = references_from_json(&task.parameter_references)
        .into_iter()
        .flat_map(|r| r.reads)
        .map(|read| read.provisioned_product_id)
        .collect();
    if upstreams.is_empty() {
        return Ok(false);
    }
    tx.hold("provisioned product dependencies").await?;
    let target = task.provisioned_product_id.as_str();
    let mut sql =
        Sql::new("WITH RECURSIVE reach(id) AS (SELECT provisioned_product_id FROM provisioned_products WHERE provisioned_product_id IN (");
    sql.list(upstreams.iter().map(|id| id.as_str().to_bind()));
    sql.push(
        ") UNION SELECT d.upstream_id FROM provisioned_product_dependencies d JOIN reach r ON d.dependent_id = r.id \
         JOIN provisioned_products pp ON pp.provisioned_product_id = d.dependent_id WHERE pp.terminated = 0 AND d.dependent_id <> ",
    );
    sql.text(target).push(") SELECT COUNT(*) FROM reach WHERE id = ").text(target);
    let found: i64 = sql.one(&mut **tx).await?;
    Ok(found > 0)
}

/// After the launch or update `task` of an upstream succeeded with `outputs` (a JSON array of
/// `{OutputKey, OutputValue}`), inside `tx`: marks stale the edges of live dependents whose
/// output's value changed (or went), and for each dependent newly stale tells webhooks
/// (`DependencyStale`) and makes its `DependencyUpdate` job due now.
pub(super) async fn mark_dependents_stale(tx: &mut super::Tx, task: &Task, outputs: &str) -> StoreResult<()> {
    let mut select = Sql::new(&format!(
        "SELECT {} FROM provisioned_product_dependencies d JOIN provisioned_products pp ON pp.provisioned_product_id = \
         d.dependent_id WHERE pp.terminated = 0 AND d.stale = 0 AND d.upstream_id = ",
        Dependency::columns("d.")
    ));
    select.text(task.provisioned_product_id.as_str());
    let rows = select.query().fetch_all(&mut **tx).await?;
    let edges = rows.iter().map(|row| Dependency::from_row(&super::read::Row::Any(row))).collect::<StoreResult<Vec<_>>>()?;
    if edges.is_empty() {
        return Ok(());
    }
    let values: BTreeMap<String, String> = serde_json::from_str::<Vec<serde_json::Value>>(outputs)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| Some((o["OutputKey"].as_str()?.to_string(), o["OutputValue"].as_str()?.to_string())))
        .collect();
    let mut changed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for edge in edges {
        if values.get(&edge.output_key).map(|v| value_hash(v)).as_deref() == Some(edge.value_hash.as_str()) {
            continue;
        }
        sql!(
            "UPDATE provisioned_product_dependencies SET stale = 1 WHERE dependent_id = $1 AND upstream_id = $2 AND output_key = $3",
            &edge.dependent_id,
            &edge.upstream_id,
            &edge.output_key
        )
        .execute(&mut **tx)
        .await?;
        changed.entry(edge.dependent_id).or_default().push(edge.output_key);
    }
    for (dependent, output_keys) in changed {
        let mut sql = Sql::new("SELECT provisioned_product_name, owner_principal_id, portfolio_id, product_id FROM provisioned_products WHERE provisioned_product_id = ");
        sql.text(dependent.as_str());
        let Some((name, owner, portfolio_id, product_id)) = sql
            .row(&mut **tx, |row| {
                Ok((
                    row.get::<String>("provisioned_product_name")?,
                    row.get::<String>("owner_principal_id")?,
                    row.get::<String>("portfolio_id")?,
                    row.get::<String>("product_id")?,
                ))
            })
            .await?
        else {
            continue;
        };
        let event = Event {
            event_type: EventType::DependencyStale,
            portfolio_id,
            fields: json!({
                "ProvisionedProductId": dependent,
                "ProvisionedProductName": name,
                "ProductId": product_id,
                "OwnerPrincipalId": owner,
                "UpstreamProvisionedProductId": task.provisioned_product_id,
                "UpstreamTaskId": task.task_id,
                "OutputKeys": output_keys,
            }),
        };
        enqueue(tx, &event).await?;
        super::schedule::schedule_now(tx, ScheduleKind::DependencyUpdate, &dependent).await?;
    }
    Ok(())
}

impl Store {
    /// Every edge whose dependent is live (what a cycle check walks).
    pub async fn dependencies(&self) -> StoreResult<Vec<Dependency>> {
        let sql = Sql::new(&format!(
            "SELECT {} FROM provisioned_product_dependencies d JOIN provisioned_products pp ON pp.provisioned_product_id = \
             d.dependent_id WHERE pp.terminated = 0 ORDER BY d.dependent_id, d.upstream_id, d.output_key",
            Dependency::columns("d.")
        ));
        self.fetch_all(&sql, Dependency::from_row).await
    }

    /// Ids of the live provisioned products with a stale dependency whose update policy is
    /// `FollowRecommended` (those the scheduler updates).
    pub async fn stale_followers(&self) -> StoreResult<Vec<String>> {
        let mut sql = Sql::new(
            "SELECT DISTINCT d.dependent_id FROM provisioned_product_dependencies d JOIN provisioned_products pp ON \
             pp.provisioned_product_id = d.dependent_id WHERE d.stale = 1 AND pp.terminated = 0 AND pp.update_policy = ",
        );
        sql.text(UpdatePolicy::FollowRecommended).push(" ORDER BY d.dependent_id");
        self.fetch_all(&sql, |row| row.get("dependent_id")).await
    }

    /// The edges of the provisioned product `id` to its upstreams.
    pub async fn upstreams_of(&self, id: &str) -> StoreResult<Vec<Dependency>> {
        let mut sql = Sql::new(&format!("SELECT {} FROM provisioned_product_dependencies WHERE dependent_id = ", Dependency::columns("")));
        sql.text(id).push(" ORDER BY upstream_id, output_key");
        self.fetch_all(&sql, Dependency::from_row).await
    }

    /// The live provisioned products whose parameters read an output of `id`, oldest first.
    pub async fn dependents_of(&self, id: &str) -> StoreResult<Vec<ProvisionedProduct>> {
        let mut sql = Sql::new(&format!(
            "SELECT {}{} WHERE pp.terminated = 0 AND pp.provisioned_product_id IN (SELECT dependent_id FROM \
             provisioned_product_dependencies WHERE upstream_id = ",
            super::provisioning::pp_columns(),
            super::provisioning::PP_FROM
        ));
        sql.text(id).push(") ORDER BY pp.created_at, pp.provisioned_product_id");
        self.fetch_all(&sql, ProvisionedProduct::from_row).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::provisioning::tests::{sample_task, seed_task};
    use crate::store::provisioning::{ChangeRefusal, TaskOutcome};
    use crate::store::testing;

    fn references(upstream: &str, key: &str, value: &str) -> String {
        let read = OutputRead { provisioned_product_id: upstream.into(), output_key: key.into(), value_hash: value_hash(value) };
        references_json(&[ParameterReference { parameter_key: "p".into(), parameter_value: "${…}".into(), reads: vec![read] }])
    }

    #[tokio::test]
    async fn a_changed_output_marks_its_dependents_stale_once_and_schedules_their_update() {
        testing::each_store(|store| async move {
            let up = seed_task(&store, "task-up").await;
            let outputs = r#"[{"OutputKey":"name","OutputValue":"a"},{"OutputKey":"other","OutputValue":"x"}]"#;
            store.finish_task(&up, None, &TaskOutcome::Succeeded { outputs: outputs.into() }, &[]).await.unwrap();
            let upstream = up.provisioned_product_id.as_str().to_string();
            let mut down = seed_task(&store, "task-down").await;
            store.finish_task(&down, None, &TaskOutcome::Succeeded { outputs: "[]".into() }, &[]).await.unwrap();
            down = Task {
                task_id: "task-down-2".into(),
                task_type: OperationType::UpdateProvisionedProduct,
                parameter_references: references(&upstream, "name", "a"),
                ..down
            };
            assert_eq!(store.start_change(&down, None).await.unwrap(), Ok(()));
            let dependent = down.provisioned_product_id.as_str().to_string();
            assert_eq!(store.upstreams_of(&dependent).await.unwrap().len(), 1);
            assert_eq!(store.dependents_of(&upstream).await.unwrap()[0].provisioned_product_id, down.provisioned_product_id);
            store.finish_task(&down, None, &TaskOutcome::Succeeded { outputs: "[]".into() }, &[]).await.unwrap();

            // The upstream changes another output: nothing is stale.
            let again = Task { task_id: "task-up-2".into(), task_type: OperationType::UpdateProvisionedProduct, ..up.clone() };
            assert_eq!(store.start_change(&again, None).await.unwrap(), Ok(()));
            let other = r#"[{"OutputKey":"name","OutputValue":"a"},{"OutputKey":"other","OutputValue":"y"}]"#;
            store.finish_task(&again, None, &TaskOutcome::Succeeded { outputs: other.into() }, &[]).await.unwrap();
            assert_eq!(store.provisioned_product(&dependent).await.unwrap().unwrap().stale_dependencies, 0);
            assert!(store.scheduled_job(ScheduleKind::DependencyUpdate, &dependent).await.unwrap().is_none());

            // The output it reads changes: stale, and its job due.
            let third = Task { task_id: "task-up-3".into(), ..again };
            assert_eq!(store.start_change(&third, None).await.unwrap(), Ok(()));
            let changed = r#"[{"OutputKey":"name","OutputValue":"b"}]"#;
            store.finish_task(&third, None, &TaskOutcome::Succeeded { outputs: changed.into() }, &[]).await.unwrap();
            assert_eq!(store.provisioned_product(&dependent).await.unwrap().unwrap().stale_dependencies, 1);
            assert!(store.scheduled_job(ScheduleKind::DependencyUpdate, &dependent).await.unwrap().is_some());
            // The scheduler updates it only once its policy follows.
            assert!(store.stale_followers().await.unwrap().is_empty(), "Manual: marked only");
            assert!(store.set_update_policy(&dependent, UpdatePolicy::FollowRecommended).await.unwrap());
            assert_eq!(store.stale_followers().await.unwrap(), vec![dependent.clone()]);

            // The dependent's next update resolves it again: its edges are replaced, not stale.
            let update = Task { task_id: "task-down-3".into(), parameter_references: references(&upstream, "name", "b"), ..down };
            assert_eq!(store.start_change(&update, None).await.unwrap(), Ok(()));
            let pp = store.provisioned_product(&dependent).await.unwrap().unwrap();
            assert_eq!(pp.stale_dependencies, 0);
            let edges = store.dependencies().await.unwrap();
            assert_eq!(edges.len(), 1);
            assert_eq!(edges[0].value_hash, value_hash("b"));
            // A terminate leaves the edges; a task without references drops them.
            let plain = Task { task_id: "task-down-4".into(), parameter_references: "[]".into(), ..sample_task("x") };
            let plain = Task { provisioned_product_id: update.provisioned_product_id.clone(), ..plain };
            store.finish_task(&update, None, &TaskOutcome::Succeeded { outputs: "[]".into() }, &[]).await.unwrap();
            assert_eq!(store.start_change(&plain, None).await.unwrap(), Ok(()));
            assert!(store.upstreams_of(&dependent).await.unwrap().is_empty());
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn updates_made_at_once_cannot_each_close_half_of_a_cycle() {
        testing::each_store(|store| async move {
            // a, b and c exist; at once, a's update reads b, b's reads c and c's reads a.
            let mut updates = Vec::new();
            for (id, upstream) in [("a", "b"), ("b", "c"), ("c", "a")] {
                let launch = seed_task(&store, &format!("task-{id}")).await;
                store.finish_task(&launch, None, &TaskOutcome::Succeeded { outputs: "[]".into() }, &[]).await.unwrap();
                updates.push(Task {
                    task_id: format!("task-{id}-2").into(),
                    task_type: OperationType::UpdateProvisionedProduct,
                    parameter_references: references(&format!("pp-task-{upstream}"), "name", "v"),
                    ..launch
                });
            }
            let mut queued = tokio::task::JoinSet::new();
            for update in updates.clone() {
                let store = store.clone();
                queued.spawn(async move { store.start_change(&update, None).await.unwrap() });
            }
            let outcomes = queued.join_all().await;
            assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 2, "{outcomes:?}");
            assert_eq!(outcomes.iter().filter(|o| **o == Err(ChangeRefusal::Cycle)).count(), 1, "{outcomes:?}");
            assert_eq!(store.dependencies().await.unwrap().len(), 2, "the refused update wrote no edge");
            // The refused one asked again is refused again: the cycle would close.
            let edges = store.dependencies().await.unwrap();
            let refused = updates.iter().find(|u| !edges.iter().any(|e| e.dependent_id == u.provisioned_product_id.as_str())).unwrap();
            let again = Task { task_id: "task-again".into(), ..refused.clone() };
            assert_eq!(store.start_change(&again, None).await.unwrap(), Err(ChangeRefusal::Cycle), "still a cycle");
        })
        .await;
    }
}
