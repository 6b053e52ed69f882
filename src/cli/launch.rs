//! `launch`: LaunchProduct for people. The product is found by id or exact name among the
//! caller's launchable products, the version defaults to the newest active one the
//! administrator recommends, the region to the first ListRegions reports; `--wait` follows the
//! launch task like `tasks watch`.

use clap::Args;
use serde_json::Value;

use super::config::Connection;
use super::{args, output, watch, Client, Failure};
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
    /// Follow the launch task until it ends; exit non-zero when it fails.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    connection: Connection,
}

/// Runs `launch`.
pub async fn run(launch: LaunchArgs) -> Result<(), Failure> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (i, parameter) in launch.parameters.iter().enumerate() {
        let (key, value) =
            parameter.split_once('=').ok_or_else(|| Failure::Usage(format!("-p {parameter:?} is not of the form KEY=VALUE")))?;
        params.push((format!("Parameters.{}.ParameterKey", i + 1), key.to_string()));
        params.push((format!("Parameters.{}.ParameterValue", i + 1), value.to_string()));
    }
    let client = Client::new(&launch.connection.resolve()?)?;
    let product_id = find_product(&client, &launch.product).await?;
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
    if let Some(portfolio) = launch.portfolio {
        params.push(("PortfolioId".into(), portfolio));
    }
    let launched = client.call(&spec::actions()[Action::LaunchProduct.name()], &params).await?;
    let pp_id = launched["ProvisionedProductId"].as_str().unwrap_or_default().to_string();
    super::print_out(&pp_id);
    if !launch.wait {
        return Ok(());
    }
    // The SDK's response model has no TaskId (PROTOCOL.md §8); this server sends one, else the
    // provisioned product names its last task.
    let task_id = match launched["TaskId"].as_str() {
        Some(id) => id.to_string(),
        None => {
            let pp = client.invoke(Action::GetProvisionedProduct, &[("ProvisionedProductId", &pp_id)]).await?;
            pp["ProvisionedProductDetail"]["LastTaskId"].as_str().unwrap_or_default().to_string()
        }
    };
    watch::watch(&client, &task_id).await
}

/// The id of the launchable product whose id or exact name is `wanted`.
async fn find_product(client: &Client, wanted: &str) -> Result<String, Failure> {
    let all = output::fetch_all_pages(client, &spec::actions()[Action::ListProductsAsEndUser.name()], &[]).await?;
    let products = all["ProductSummaries"].as_array().cloned().unwrap_or_default();
    let field = |p: &Value, key: &str| p[key].as_str().unwrap_or_default().to_string();
    if let Some(p) = products.iter().find(|p| field(p, "ProductId") == wanted) {
        return Ok(field(p, "ProductId"));
    }
    let named: Vec<&Value> = products.iter().filter(|p| field(p, "ProductName") == wanted).collect();
    match named.as_slice() {
        [one] => Ok(field(one, "ProductId")),
        [] => {
            let names: Vec<String> = products.iter().map(|p| field(p, "ProductName")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let close = args::close_names(wanted, &names);
            let hint = if close.is_empty() {
                "ListProductsAsEndUser lists them".to_string()
            } else {
                format!("did you mean {}?", close.join(", "))
            };
            Err(Failure::Usage(format!("you can launch no product with the id or name {wanted:?}: {hint}")))
        }
        many => Err(Failure::Usage(format!(
            "several products are named {wanted:?}: pass one of the ids {}",
            many.iter().map(|p| field(p, "ProductId")).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The version named by id or name, or the default: the newest active version with Guidance
/// Recommended or Latest, else the newest active one.
fn choose_version(versions: &Value, wanted: Option<&str>) -> Result<String, Failure> {
    let versions = versions.as_array().cloned().unwrap_or_default();
    let field = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
    if let Some(wanted) = wanted {
        return versions
            .iter()
            .find(|v| field(v, "ProductVersionId") == wanted || field(v, "ProductVersionName") == wanted)
            .map(|v| field(v, "ProductVersionId"))
            .ok_or_else(|| {
                let known: Vec<String> =
                    versions.iter().map(|v| format!("{} ({})", field(v, "ProductVersionName"), field(v, "ProductVersionId"))).collect();
                Failure::Usage(format!("the product has no version {wanted:?}; it has {}", known.join(", ")))
            });
    }
    let active: Vec<&Value> = versions.iter().filter(|v| v["Active"].as_bool() == Some(true)).collect();
    let newest = |candidates: Vec<&Value>| {
        // Timestamps have second precision: among equal ones the later in the list wins.
        candidates.into_iter().enumerate().max_by_key(|(i, v)| (field(v, "CreateTime"), *i)).map(|(_, v)| field(v, "ProductVersionId"))
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
