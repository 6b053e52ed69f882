//! `launch`, `update` and `terminate`: the provisioning actions for people. Products and
//! provisioned products are found by id or exact name among the caller's own; a launch's version
//! defaults to the newest active one the administrator recommends and its region to the first
//! ListRegions reports, an update's version to the one running; `--wait` follows the task like
//! `tasks watch`. Each prints the ProvisionedProductId first.

use clap::Args;
use serde_json::Value;

use super::config::Connection;
use super::{args, output, print_out, watch, Client, Failure};
use crate::api::action::Action;
use crate::api::spec;

/// Options of `launch`.
#[derive(Args)]
pub struct LaunchArgs {
    /// Product id, or the exact product name.
    product: String,
    /// Product version id or name (default: the newest active version whose Guidance is
    /// Recommended or Latest, else the newest active one).
    #[arg(long)]
    version: Option<String>,
    /// Portfolio id (default: the one portfolio that grants the product).
    #[arg(long)]
    portfolio: Option<String>,
    /// Name of the provisioned product.
    #[arg(long)]
    name: String,
    /// A template parameter (repeatable).
    #[arg(short = 'p', long = "parameter", value_name = "KEY=VALUE")]
    parameters: Vec<String>,
    /// Region to launch in (default: the first region ListRegions reports).
    #[arg(long)]
    region: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// Options of `update`.
#[derive(Args)]
pub struct UpdateArgs {
    /// Provisioned product id, or the exact name of one of yours.
    provisioned_product: String,
    /// Product version id or name to move to (default: the version it runs).
    #[arg(long)]
    version: Option<String>,
    /// Portfolio id (default: the one portfolio that grants the product).
    #[arg(long)]
    portfolio: Option<String>,
    /// A template parameter to change (repeatable).
    #[arg(short = 'p', long = "parameter", value_name = "KEY=VALUE")]
    parameters: Vec<String>,
    #[command(flatten)]
    common: Common,
}

/// Options of `terminate`.
#[derive(Args)]
pub struct TerminateArgs {
    /// Provisioned product id, or the exact name of one of yours.
    provisioned_product: String,
    #[command(flatten)]
    common: Common,
}

/// Options every provisioning helper has.
#[derive(Args)]
struct Common {
    /// Follow the task until it ends; exit non-zero when it fails.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    connection: Connection,
}

/// Runs `launch`.
pub async fn launch(launch: LaunchArgs) -> Result<(), Failure> {
    let mut params = template_parameters(&launch.parameters)?;
    let client = Client::new(&launch.common.connection.resolve()?)?;
    let products = list_all(&client, Action::ListProductsAsEndUser).await?;
    let product = find(&products, ["ProductId", "ProductName"], &launch.product, "you can launch no product")?;
    let product_id = text(product, "ProductId");
    let versions = client.invoke(Action::ListProductVersions, &[("ProductId", &product_id)]).await?;
    let version_id = choose_version(&versions["ProductVersionDetails"], launch.version.as_deref())?;
    let region = match launch.region {
        Some(region) => region,
        None => {
            let regions = client.invoke(Action::ListRegions, &[]).await?;
            regions["Regions"][0]["RegionId"]
                .as_str()
                .map(String::from)
                .ok_or_else(|| Failure::Usage("the server reports no region: pass --region".into()))?
        }
    };
    params.extend([
        ("ProductId".to_string(), product_id),
        ("ProductVersionId".to_string(), version_id),
        ("ProvisionedProductName".to_string(), launch.name),
        ("StackRegionId".to_string(), region),
    ]);
    params.extend(launch.portfolio.map(|portfolio| ("PortfolioId".to_string(), portfolio)));
    submit(&client, Action::LaunchProduct, &params, launch.common.wait).await
}

/// Runs `update`.
pub async fn update(update: UpdateArgs) -> Result<(), Failure> {
    let mut params = template_parameters(&update.parameters)?;
    let client = Client::new(&update.common.connection.resolve()?)?;
    let provisioned = list_all(&client, Action::ListProvisionedProducts).await?;
    let pp = find(&provisioned, PROVISIONED_PRODUCT, &update.provisioned_product, "you have no provisioned product")?;
    let product_id = text(pp, "ProductId");
    let version_id = match update.version {
        Some(wanted) => {
            let versions = client.invoke(Action::ListProductVersions, &[("ProductId", &product_id)]).await?;
            choose_version(&versions["ProductVersionDetails"], Some(&wanted))?
        }
        None => text(pp, "ProductVersionId"),
    };
    params.extend([
        ("ProvisionedProductId".to_string(), text(pp, "ProvisionedProductId")),
        ("ProductId".to_string(), product_id),
        ("ProductVersionId".to_string(), version_id),
    ]);
    params.extend(update.portfolio.map(|portfolio| ("PortfolioId".to_string(), portfolio)));
    submit(&client, Action::UpdateProvisionedProduct, &params, update.common.wait).await
}

/// Runs `terminate`.
pub async fn terminate(terminate: TerminateArgs) -> Result<(), Failure> {
    let client = Client::new(&terminate.common.connection.resolve()?)?;
    let provisioned = list_all(&client, Action::ListProvisionedProducts).await?;
    let pp = find(&provisioned, PROVISIONED_PRODUCT, &terminate.provisioned_product, "you have no provisioned product")?;
    let params = [("ProvisionedProductId".to_string(), text(pp, "ProvisionedProductId"))];
    submit(&client, Action::TerminateProvisionedProduct, &params, terminate.common.wait).await
}

/// Id and name fields of a provisioned product.
const PROVISIONED_PRODUCT: [&str; 2] = ["ProvisionedProductId", "ProvisionedProductName"];

/// `-p KEY=VALUE` options as the wire's `Parameters.N.*`.
fn template_parameters(parameters: &[String]) -> Result<Vec<(String, String)>, Failure> {
    let mut params = Vec::new();
    for (i, parameter) in parameters.iter().enumerate() {
        let (key, value) =
            parameter.split_once('=').ok_or_else(|| Failure::Usage(format!("-p {parameter:?} is not of the form KEY=VALUE")))?;
        params.push((format!("Parameters.{}.ParameterKey", i + 1), key.to_string()));
        params.push((format!("Parameters.{}.ParameterValue", i + 1), value.to_string()));
    }
    Ok(params)
}

/// Every item of a paged list action.
pub(super) async fn list_all(client: &Client, action: Action) -> Result<Vec<Value>, Failure> {
    let all = output::fetch_all_pages(client, &spec::actions()[action.name()], &[]).await?;
    Ok(all.as_object().and_then(|o| o.values().find_map(Value::as_array)).cloned().unwrap_or_default())
}

fn text(item: &Value, key: &str) -> String {
    item[key].as_str().unwrap_or_default().to_string()
}

/// The item whose id or else exact name is `wanted`; `none` starts the message when there is
/// none, which names close names.
fn find<'a>(items: &'a [Value], [id, name]: [&str; 2], wanted: &str, none: &str) -> Result<&'a Value, Failure> {
    if let Some(item) = items.iter().find(|item| text(item, id) == wanted) {
        return Ok(item);
    }
    let named: Vec<&Value> = items.iter().filter(|item| text(item, name) == wanted).collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => {
            let names: Vec<String> = items.iter().map(|item| text(item, name)).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let close = args::close_names(wanted, &names);
            let hint = if close.is_empty() { String::new() } else { format!(": did you mean {}?", close.join(", ")) };
            Err(Failure::Usage(format!("{none} with the id or name {wanted:?}{hint}")))
        }
        many => Err(Failure::Usage(format!(
            "several are named {wanted:?}: pass one of the ids {}",
            many.iter().map(|item| text(item, id)).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Calls the action, prints the ProvisionedProductId and, with `wait`, follows the task.
async fn submit(client: &Client, action: Action, params: &[(String, String)], wait: bool) -> Result<(), Failure> {
    let answer = client.call(&spec::actions()[action.name()], params).await?;
    let pp_id = match answer["ProvisionedProductId"].as_str() {
        Some(id) => id.to_string(),
        None => params.iter().find(|(k, _)| k == "ProvisionedProductId").map(|(_, v)| v.clone()).unwrap_or_default(),
    };
    print_out(&pp_id)?;
    if !wait {
        return Ok(());
    }
    // The SDK's response models have no TaskId (PROTOCOL.md §8); this server sends one, else the
    // provisioned product names its last task.
    let task_id = match answer["TaskId"].as_str() {
        Some(id) => id.to_string(),
        None => {
            let pp = client.invoke(Action::GetProvisionedProduct, &[("ProvisionedProductId", &pp_id)]).await?;
            text(&pp["ProvisionedProductDetail"], "LastTaskId")
        }
    };
    watch::watch(client, &task_id).await
}

/// The version named by id or name, or the default: the newest active version with Guidance
/// Recommended or Latest, else the newest active one.
fn choose_version(versions: &Value, wanted: Option<&str>) -> Result<String, Failure> {
    let versions = versions.as_array().cloned().unwrap_or_default();
    if let Some(wanted) = wanted {
        return versions
            .iter()
            .find(|v| text(v, "ProductVersionId") == wanted || text(v, "ProductVersionName") == wanted)
            .map(|v| text(v, "ProductVersionId"))
            .ok_or_else(|| {
                let known: Vec<String> =
                    versions.iter().map(|v| format!("{} ({})", text(v, "ProductVersionName"), text(v, "ProductVersionId"))).collect();
                Failure::Usage(format!("the product has no version {wanted:?}; it has {}", known.join(", ")))
            });
    }
    let active: Vec<&Value> = versions.iter().filter(|v| v["Active"].as_bool() == Some(true)).collect();
    let newest = |candidates: Vec<&Value>| {
        // Timestamps have second precision: among equal ones the later in the list wins.
        candidates.into_iter().enumerate().max_by_key(|(i, v)| (text(v, "CreateTime"), *i)).map(|(_, v)| text(v, "ProductVersionId"))
    };
    let guided: Vec<&Value> = active.iter().copied().filter(|v| matches!(v["Guidance"].as_str(), Some("Recommended" | "Latest"))).collect();
    newest(guided).or_else(|| newest(active)).ok_or_else(|| Failure::Usage("the product has no active version to launch".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn version(id: &str, time: &str, active: bool, guidance: &str) -> Value {
        json!({"ProductVersionId": id, "ProductVersionName": format!("name-{id}"), "CreateTime": time, "Active": active, "Guidance": guidance})
    }

    #[test]
    fn the_default_version_is_the_newest_recommended_else_the_newest_active() {
        let versions = json!([
            version("pv-old", "2026-01-01T00:00:00Z", true, "Recommended"),
            version("pv-new", "2026-01-02T00:00:00Z", true, "Default"),
            version("pv-off", "2026-01-03T00:00:00Z", false, "Latest"),
        ]);
        assert_eq!(choose_version(&versions, None).unwrap(), "pv-old");
        let versions =
            json!([version("pv-a", "2026-01-01T00:00:00Z", true, "Default"), version("pv-b", "2026-01-01T00:00:00Z", true, "Default")]);
        assert_eq!(choose_version(&versions, None).unwrap(), "pv-b");
        assert_eq!(choose_version(&versions, Some("name-pv-a")).unwrap(), "pv-a");
        assert!(matches!(choose_version(&versions, Some("v9")), Err(Failure::Usage(_))));
        assert!(choose_version(&json!([version("pv-x", "2026-01-01T00:00:00Z", false, "Default")]), None).is_err());
    }
}
