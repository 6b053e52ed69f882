//! servicecatalog: a self-hosted service catalog that speaks the Alibaba Cloud Service Catalog
//! API (2021-09-01) and provisions products with Terraform.

pub mod api;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod console;
pub mod engine;
pub mod fetch;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
pub mod memory;
pub mod model;
pub mod ops;
pub mod protocol;
pub mod provisioning;
pub mod roles;
pub mod sample;
pub mod server;
pub mod store;
pub mod users;
