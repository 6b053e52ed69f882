//! How the provider process behaves like a Go provider under Terraform: it refuses to run outside
//! Terraform, prints no backtraces, lives through the SIGINT that Terraform sends to its process group,
//! and exits when Terraform dies.

use std::io;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{getppid, pidfd_open, PidfdFlags};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// The magic cookie of Terraform's plugin handshake (a public constant of the protocol): Terraform sets it
/// in the environment of every provider it starts.
const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// Whether Terraform started this process (else serving would only print a handshake and wait).
pub fn started_by_terraform() -> bool {
    std::env::var(MAGIC_COOKIE_KEY).as_deref() == Ok(MAGIC_COOKIE_VALUE)
}

/// Turns backtraces off whatever the environment says: Terraform passes its own environment on, and a
/// `RUST_BACKTRACE` there would append a backtrace to every error message. Call before any thread starts.
pub fn disable_backtraces() {
    std::env::set_var("RUST_BACKTRACE", "0");
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
}

/// Keeps SIGINT from killing the process, so the call in flight finishes and Terraform can still stop
/// the provider cleanly; each SIGINT cancels `interrupted` instead.
pub fn absorb_interrupts(interrupted: CancellationToken) -> io::Result<()> {
    let mut interrupts = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        while interrupts.recv().await.is_some() {
            interrupted.cancel();
        }
    });
    Ok(())
}

/// Exits as soon as the parent process (Terraform) exits, even by SIGKILL, so that no provider is left
/// behind. A thread blocks on a pidfd of the parent, which becomes readable when it exits: no polling.
pub fn exit_with_parent() -> io::Result<()> {
    let parent = getppid().ok_or_else(|| io::Error::other("the provider has no parent process"))?;
    let parent_fd = pidfd_open(parent, PidfdFlags::empty())?;
    // The parent may have died before the pidfd was opened: the process was then re-parented.
    if getppid() != Some(parent) {
        std::process::exit(1);
    }
    std::thread::spawn(move || {
        let mut fds = [PollFd::new(&parent_fd, PollFlags::IN)];
        // Only EINTR returns early without the parent having exited.
        while poll(&mut fds, None).is_err_and(|error| error == rustix::io::Errno::INTR) {}
        std::process::exit(1);
    });
    Ok(())
}
