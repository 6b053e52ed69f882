//! `ListRegions`: the regions this installation offers, from configuration.

use serde_json::{json, Value};

use super::error::ApiError;
use super::Ctx;

pub(super) fn list_regions(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    Ok(json!({ "Regions": ctx.state.config.regions }))
}
