//! `terraform-provider-sandbox`: a Terraform provider (plugin protocol 6, source address
//! `servicecatalog.local/demo/sandbox`) whose resources touch only one sandbox directory. It exists for
//! offline tests and the sample catalog; see the README beside Cargo.toml.

mod handshake;
mod lifecycle;
mod provider;
mod resources;
mod sandbox;

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    lifecycle::disable_backtraces();
    if !lifecycle::started_by_terraform() {
        eprintln!("terraform-provider-sandbox is a Terraform plugin: install it in a provider mirror and let Terraform run it.");
        return ExitCode::FAILURE;
    }
    let served = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())
        .and_then(|runtime| runtime.block_on(serve()));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("terraform-provider-sandbox: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Serves the provider until Terraform shuts it down.
async fn serve() -> Result<(), String> {
    let interrupted = CancellationToken::new();
    lifecycle::absorb_interrupts(interrupted.clone()).map_err(|error| format!("cannot handle SIGINT: {error}"))?;
    lifecycle::exit_with_parent().map_err(|error| format!("cannot watch the parent process: {error}"))?;
    handshake::relay_stdout().map_err(|error| format!("cannot relay stdout: {error}"))?;
    tf_provider::serve("sandbox", provider::SandboxProvider::new(interrupted)).await.map_err(|error| format!("{error:#}"))
}
