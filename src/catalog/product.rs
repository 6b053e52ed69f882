//! Products for administrators (create, read, update, delete, list, copy), the end user's view of
//! them — only products held by a portfolio granted to the caller, administrators included, who
//! see the whole catalog through the admin actions instead; a product reached through exactly one
//! granted portfolio has a default launch option — and the association of products with portfolios.

use serde::{Deserialize, Serialize};

use super::error::DomainError;
use super::tag_option::TagOptionDetail;
use super::template::TERRAFORM;
use super::version::VersionFields;
use super::wire::{format_time, name_filter, Filter, Paged, Paging};
use super::Catalog;
use crate::store::product::{Deletion, Product, ProductQuery, ProductVersion};
use crate::store::{new_id, now_ms};

/// The only product type.
const PRODUCT_TYPE: &str = "Ros";

/// `CreateProduct`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewProduct {
    pub product_name: String,
    pub provider_name: String,
    pub description: Option<String>,
    pub product_type: Option<String>,
    pub template_type: Option<String>,
    pub product_version_parameters: Option<VersionFields>,
}

/// `UpdateProduct`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProductUpdate {
    pub product_id: String,
    pub product_name: String,
    pub provider_name: String,
    pub description: Option<String>,
}

/// The request naming one product, and the answer of update.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProductRef {
    pub product_id: String,
}

/// `ListProductsAsAdmin` and `ListProductsAsEndUser` (which takes neither scope nor portfolio).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProductListing {
    #[serde(flatten)]
    pub paging: Paging,
    #[serde(default)]
    pub filters: Vec<Filter>,
    pub scope: Option<String>,
    pub portfolio_id: Option<String>,
}

/// `CopyProduct`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CopyRequest {
    pub source_product_arn: String,
    pub target_product_name: Option<String>,
}

/// `AssociateProductWithPortfolio` and `DisassociateProductFromPortfolio`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProductInPortfolio {
    pub portfolio_id: String,
    pub product_id: String,
}

/// The `ProductDetail` (admin) or `ProductSummary` (end user) object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProductDetail {
    pub product_id: String,
    pub product_arn: String,
    pub product_name: String,
    pub product_type: String,
    pub provider_name: String,
    pub description: String,
    pub template_type: String,
    pub create_time: String,
    /// End users only: whether exactly one granted portfolio holds the product.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_default_launch_option: Option<bool>,
}

/// `CreateProduct`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreatedProduct {
    pub product_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_version_id: Option<String>,
}

/// `GetProductAsAdmin`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProductView {
    pub product_detail: ProductDetail,
    pub tag_options: Vec<TagOptionDetail>,
}

/// `GetProductAsEndUser`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProductSummaryView {
    pub product_summary: ProductDetail,
}

/// `ListProductsAsAdmin`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Products {
    #[serde(flatten)]
    pub page: Paged,
    pub product_details: Vec<ProductDetail>,
}

/// `ListProductsAsEndUser`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProductSummaries {
    #[serde(flatten)]
    pub page: Paged,
    pub product_summaries: Vec<ProductDetail>,
}

impl ProductListing {
    /// The store query of the filters and portfolio.
    fn query(&self) -> ProductQuery {
        ProductQuery { names: name_filter(&self.filters, "ProductName"), portfolio_id: self.portfolio_id.clone() }
    }
}

impl Catalog<'_> {
    /// The `ProductDetail` of `p`.
    pub fn product_detail(&self, p: &Product) -> ProductDetail {
        ProductDetail {
            product_id: p.product_id.clone(),
            product_arn: self.arn("product", &p.product_id),
            product_name: p.product_name.clone(),
            product_type: p.product_type.clone(),
            provider_name: p.provider_name.clone(),
            description: p.description.clone(),
            template_type: p.template_type.clone(),
            create_time: format_time(p.created_at),
            has_default_launch_option: None,
        }
    }

    /// The `ProductSummary` of a product reached through `portfolios` granted portfolios.
    fn summary(&self, product: &Product, portfolios: usize) -> ProductDetail {
        ProductDetail { has_default_launch_option: Some(portfolios == 1), ..self.product_detail(product) }
    }

    /// Product `id`, or `EntityNotExists.Product`.
    pub(super) async fn product(&self, id: &str) -> Result<Product, DomainError> {
        self.store.product(id).await?.ok_or_else(|| DomainError::not_found("Product", id))
    }

    /// Refuses end users a product none of their granted portfolios holds (as if it did not exist).
    pub(super) async fn check_reachable(&self, product_id: &str) -> Result<(), DomainError> {
        if self.caller.is_admin {
            return Ok(());
        }
        if self.store.product_portfolios(&[product_id.to_string()], &self.granted().await?).await?.is_empty() {
            return Err(DomainError::not_found("Product", product_id));
        }
        Ok(())
    }

    /// `CreateProduct`.
    pub async fn create_product(&self, req: NewProduct) -> Result<CreatedProduct, DomainError> {
        let version_type = req.product_version_parameters.as_ref().and_then(|p| p.template_type.clone());
        let template_type = match (req.template_type, version_type) {
            (Some(product), Some(version)) if product != version => {
                return Err(DomainError::invalid_parameter(
                    "ProductVersionParameters.TemplateType",
                    format!("ProductVersionParameters.TemplateType {version} differs from the product's TemplateType {product}."),
                ))
            }
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => TERRAFORM.to_string(),
        };
        let product = Product {
            product_id: new_id("prod"),
            product_name: req.product_name,
            provider_name: req.provider_name,
            description: req.description.unwrap_or_default(),
            product_type: PRODUCT_TYPE.to_string(),
            template_type: template_type.clone(),
            created_at: now_ms(),
        };
        let mut versions = Vec::new();
        if let Some(fields) = req.product_version_parameters {
            versions.push(self.new_version("ProductVersionParameters.", &product.product_id, &template_type, fields).await?);
        }
        self.store.insert_product(&product, &versions).await?;
        Ok(CreatedProduct { product_id: product.product_id, product_version_id: versions.pop().map(|v| v.product_version_id) })
    }

    /// `GetProductAsAdmin`.
    pub async fn get_product(&self, req: ProductRef) -> Result<ProductView, DomainError> {
        let product = self.product(&req.product_id).await?;
        let tag_options = self.tag_options_of(&product.product_id).await?;
        Ok(ProductView { product_detail: self.product_detail(&product), tag_options })
    }

    /// `UpdateProduct`.
    pub async fn update_product(&self, req: ProductUpdate) -> Result<ProductRef, DomainError> {
        if !self.store.update_product(&req.product_id, &req.product_name, &req.provider_name, req.description.as_deref()).await? {
            return Err(DomainError::not_found("Product", &req.product_id));
        }
        Ok(ProductRef { product_id: req.product_id })
    }

    /// `DeleteProduct`.
    pub async fn delete_product(&self, req: ProductRef) -> Result<(), DomainError> {
        match self.store.delete_product(&req.product_id).await? {
            Deletion::Deleted => Ok(()),
            Deletion::NotFound => Err(DomainError::not_found("Product", &req.product_id)),
            Deletion::InUse(used) | Deletion::LastVersion(used) => {
                Err(DomainError::invalid_status("Product", format!("The product {} cannot be deleted: {used}.", req.product_id)))
            }
        }
    }

    /// `ListProductsAsAdmin`.
    pub async fn list_products(&self, req: ProductListing) -> Result<Products, DomainError> {
        if let Some(portfolio) = &req.portfolio_id {
            self.portfolio(portfolio).await?;
        }
        // Every product of this installation is local: products shared from other accounts do not exist.
        let (products, total) = if req.scope.as_deref() == Some("Import") {
            (Vec::new(), 0)
        } else {
            self.store.list_products(&req.query(), req.paging.order(), req.paging.page()).await?
        };
        Ok(Products { page: req.paging.answer(total), product_details: products.iter().map(|p| self.product_detail(p)).collect() })
    }

    /// `ListProductsAsEndUser`.
    pub async fn end_user_products(&self, req: ProductListing) -> Result<ProductSummaries, DomainError> {
        let granted = self.granted().await?;
        let listing = self.store.list_products_in(&granted, &req.query(), req.paging.order(), req.paging.page()).await?;
        let (products, total) = &*listing;
        let product_summaries = products.iter().map(|(product, holders)| self.summary(product, *holders as usize)).collect();
        Ok(ProductSummaries { page: req.paging.answer(*total), product_summaries })
    }

    /// `GetProductAsEndUser`.
    pub async fn end_user_product(&self, req: ProductRef) -> Result<ProductSummaryView, DomainError> {
        let granted = self.granted().await?;
        let product = self.product(&req.product_id).await?;
        let links = self.store.product_portfolios(std::slice::from_ref(&product.product_id), &granted).await?;
        if links.is_empty() {
            return Err(DomainError::not_found("Product", &req.product_id));
        }
        Ok(ProductSummaryView { product_summary: self.summary(&product, links.len()) })
    }

    /// The product id of `acs:servicecatalog:<region>:<account>:product/<id>` when the ARN is one
    /// of this installation's.
    fn product_id_of_arn(&self, arn: &str) -> Result<String, DomainError> {
        let invalid = || {
            DomainError::invalid_parameter(
                "SourceProductArn",
                format!(
                    "The parameter SourceProductArn {arn:?} is not a product ARN (acs:servicecatalog:<region>:<account>:product/<id>)."
                ),
            )
        };
        let id = arn.rsplit_once(":product/").map(|(_, id)| id).filter(|id| !id.is_empty()).ok_or_else(invalid)?;
        if arn != self.arn("product", id) {
            if arn.split(':').count() != 5 || !arn.starts_with("acs:servicecatalog:") {
                return Err(invalid());
            }
            // Another region or account: nothing is shared into this installation.
            return Err(DomainError::not_found("Product", arn));
        }
        Ok(id.to_string())
    }

    /// `CopyProduct`.
    pub async fn copy_product(&self, req: CopyRequest) -> Result<(), DomainError> {
        let source_id = self.product_id_of_arn(&req.source_product_arn)?;
        let source = self.product(&source_id).await?;
        let now = now_ms();
        let product = Product {
            product_id: new_id("prod"),
            product_name: req.target_product_name.unwrap_or_else(|| source.product_name.clone()),
            created_at: now,
            ..source
        };
        let versions: Vec<ProductVersion> = self
            .store
            .product_versions(&source_id, false)
            .await?
            .into_iter()
            .zip(0..)
            // One millisecond apart: the copies list in the source's order.
            .map(|(v, i)| ProductVersion {
                product_version_id: new_id("pv"),
                product_id: product.product_id.clone(),
                created_at: now + i,
                ..v
            })
            .collect();
        Ok(self.store.insert_product(&product, &versions).await?)
    }

    /// `AssociateProductWithPortfolio`.
    pub async fn associate_product(&self, req: ProductInPortfolio) -> Result<(), DomainError> {
        self.product(&req.product_id).await?;
        self.portfolio(&req.portfolio_id).await?;
        Ok(self.store.associate_product(&req.portfolio_id, &req.product_id).await?)
    }

    /// `DisassociateProductFromPortfolio`.
    pub async fn disassociate_product(&self, req: ProductInPortfolio) -> Result<(), DomainError> {
        self.product(&req.product_id).await?;
        self.portfolio(&req.portfolio_id).await?;
        if !self.store.disassociate_product(&req.portfolio_id, &req.product_id).await? {
            return Err(DomainError::invalid_status(
                "Product",
                format!(
                    "The product {} cannot leave portfolio {}: constraints of the pair remain; delete them first.",
                    req.product_id, req.portfolio_id
                ),
            ));
        }
        Ok(())
    }
}
