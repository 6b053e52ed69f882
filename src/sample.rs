//! The bundled sample catalog (`serve --sample-catalog`): a portfolio granted to every user with
//! two products — "Hello outputs" (no resources) and "Static website" (three files through the
//! bundled sandbox provider). Loaded through the API's own handlers as the administrator, so it
//! obeys every rule a caller's catalog does; loading twice changes nothing.

use serde_json::{json, Map, Value};

use crate::api::action::Action;
use crate::api::{dispatch, spec, Answer, AppState, Ctx};
use crate::protocol::params::Params;
use crate::store::principal::ROOT_USER_NAME;

/// Name of the sample portfolio (its presence means the sample is loaded).
pub const PORTFOLIO_NAME: &str = "Sample catalog";

const HELLO: &str = include_str!("../samples/hello/main.tf");
const WEBSITE: &str = include_str!("../samples/website/main.tf");

/// Loads the sample catalog unless a portfolio of that name exists.
pub async fn load(state: &AppState) -> anyhow::Result<()> {
    let root = state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|(p, _)| p)
        .find(|p| p.name == ROOT_USER_NAME)
        .ok_or_else(|| anyhow::anyhow!("the administrator does not exist"))?;
    let ctx = Ctx { state, principal: &root, arrived: state.store.catalog_count_mark() };
    let existing = call(&ctx, Action::ListPortfolios, &[("Filters.1.Key", "PortfolioName"), ("Filters.1.Value", PORTFOLIO_NAME)]).await?;
    if existing["TotalCount"].as_i64().unwrap_or(0) > 0 {
        return Ok(());
    }
    let portfolio = call(
        &ctx,
        Action::CreatePortfolio,
        &[
            ("PortfolioName", PORTFOLIO_NAME),
            ("ProviderName", "servicecatalog"),
            ("Description", "Products that launch offline, to try the service."),
        ],
    )
    .await?;
    let portfolio_id = portfolio["PortfolioId"].as_str().unwrap_or_default().to_string();
    let transform = state.catalog(&root).default_transform().to_string();
    for (name, description, tf) in [
        ("Hello outputs", "Variables in, outputs out: no resources, launches in well under a second.", HELLO),
        (
            "Static website",
            "Three files of a static website, written by the sandbox provider: create, change and destroy real resources.",
            WEBSITE,
        ),
    ] {
        let body = json!({
            "ROSTemplateFormatVersion": "2015-09-01",
            "Transform": transform,
            "Description": description,
            "Workspace": {"main.tf": tf},
        })
        .to_string();
        let template = call(&ctx, Action::CreateTemplate, &[("TemplateType", "RosTerraformTemplate"), ("TemplateBody", &body)]).await?;
        let version = json!({
            "ProductVersionName": "v1",
            "TemplateType": "RosTerraformTemplate",
            "TemplateUrl": template["TemplateUrl"],
            "Guidance": "Recommended",
            "Active": true,
        })
        .to_string();
        let product = call(
            &ctx,
            Action::CreateProduct,
            &[
                ("ProductName", name),
                ("ProviderName", "servicecatalog"),
                ("Description", description),
                ("ProductType", "Ros"),
                ("TemplateType", "RosTerraformTemplate"),
                ("ProductVersionParameters", &version),
            ],
        )
        .await?;
        let product_id = product["ProductId"].as_str().unwrap_or_default().to_string();
        call(&ctx, Action::AssociateProductWithPortfolio, &[("ProductId", &product_id), ("PortfolioId", &portfolio_id)]).await?;
    }
    call(
        &ctx,
        Action::AssociatePrincipalWithPortfolio,
        &[("PortfolioId", &portfolio_id), ("PrincipalType", "RamUser"), ("PrincipalPattern", "*")],
    )
    .await?;
    tracing::info!(portfolio_id, "loaded the sample catalog");
    Ok(())
}

async fn call(ctx: &Ctx<'_>, action: Action, params: &[(&str, &str)]) -> anyhow::Result<Value> {
    let decoded: Map<String, Value> = spec::decode(&spec::actions()[action.name()], &Params::from_pairs(params.iter().copied()))
        .map_err(|e| anyhow::anyhow!("{}: {} {}", action.name(), e.code(), e.message()))?;
    dispatch(ctx, action, decoded)
        .await
        .map(Answer::into_value)
        .map_err(|e| anyhow::anyhow!("{}: {} {}", action.name(), e.code(), e.message()))
}
