//! The resources of the provider, one module each.

mod failure;
mod file;
mod sleep;

pub use failure::FailureResource;
pub use file::FileResource;
pub use sleep::SleepResource;
