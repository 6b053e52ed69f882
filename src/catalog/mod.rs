//! The catalog's feature modules, free of HTTP. Each owns the wire requests and answers of its
//! actions (serde structs with the API's names, decoded by `api` and built by the console alike)
//! and the operations of [`Catalog`] behind them, with the visibility rules: [`portfolio`] (and
//! its grants), [`product`] (the administrators' and the end users' views), [`version`] (product
//! versions, their templates — uploaded, or fetched from Git and HTTP(S) URLs through `fetch` —
//! and a version resolved for launch), [`follow`] (a product following a repository's tags),
//! [`launch_option`] (constraints
//! and the launch options they summarise) and [`tag_option`]. Beside them sit the rules they
//! apply: template validation and inspection ([`template`], bounded by the nesting pre-scan of
//! `nesting`), constraint Config documents ([`constraint`]), the parameter metadata of product
//! versions with the check of launch parameters ([`parameters`]), tag rules ([`tag`]) and the
//! paging shared by list actions ([`wire`]). What they refuse is a [`error::DomainError`]. The SQL
//! stays in `store`, which keeps the dialect branches and the caches in one layer.

pub mod constraint;
pub mod error;
pub mod follow;
pub mod launch_option;
mod nesting;
pub mod parameters;
pub mod portfolio;
pub mod product;
pub mod tag;
pub mod tag_option;
pub mod template;
pub mod version;
pub mod wire;

use crate::store::principal::Principal;
use crate::store::Store;

/// The catalog as one caller sees it.
pub struct Catalog<'a> {
    pub store: &'a Store,
    pub caller: &'a Principal,
    pub region: &'a str,
    pub account_id: &'a str,
    pub regions: &'a [crate::model::Region],
    /// The Terraform binaries of this node: the `Transform`s new versions may name.
    pub binaries: &'a crate::engine::binaries::Binaries,
    /// Which outside template sources a `TemplateUrl` may name, and how they are fetched.
    pub sources: &'a crate::fetch::SourcePolicy,
}

impl Catalog<'_> {
    /// `acs:servicecatalog:{region}:{account}:{kind}/{id}`.
    pub fn arn(&self, kind: &str, id: &str) -> String {
        format!("acs:servicecatalog:{}:{}:{kind}/{id}", self.region, self.account_id)
    }

    /// The `Transform` of templates written for any Terraform version (the sample catalog's, a
    /// `main.tf` pasted in the console): Terraform 1.0, or where this node does not run it, the
    /// newest version it runs.
    pub fn default_transform(&self) -> crate::model::Transform {
        self.binaries.preferred(crate::model::Transform::terraform(1, 0))
    }

    /// The portfolios granted to the caller.
    async fn granted(&self) -> Result<std::sync::Arc<[String]>, error::DomainError> {
        Ok(self.store.portfolios_granted_to(self.caller).await?)
    }
}
