//! Running the `terraform` (or `tofu`) CLI for one task: argv without a shell, in its sandbox
//! ([`super::sandbox`]) and its own process group (Terraform 1.0 re-executes itself; signalling
//! the group reaches the real process), with an allow-listed environment, each command's stdout and stderr streamed into the task log, and
//! a deadline that interrupts Terraform gracefully (SIGINT) and then by force (SIGKILL).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;
use tokio::time::Instant;

use super::logs::TaskLog;
use super::redact::Redactor;
use super::sandbox::Jail;

/// Time Terraform gets to stop after SIGINT before it is killed.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

/// The file recording the process group of the command running in `dir`, for crash recovery:
/// beside the directory, where the job (which may write anything in it) cannot forge it.
fn pgid_file(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".pgid");
    dir.with_file_name(name)
}

/// Finds the Terraform binary: the configured path, else `terraform`, else `tofu` on PATH.
pub fn find_binary(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = configured {
        return Some(path.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    ["terraform", "tofu"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Why a command did not complete normally.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The binary could not be started.
    #[error("cannot start {binary}: {source}")]
    Spawn { binary: String, source: std::io::Error },
    /// The task's deadline passed; Terraform was interrupted.
    #[error("the task exceeded its time limit of {0} seconds and Terraform was stopped")]
    TimedOut(u64),
    /// The worker lost its lease or is shutting down; Terraform was interrupted.
    #[error("{0}")]
    Cancelled(String),
}

/// What a finished command left.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// The end of its stderr (for `StatusMessage`).
    pub stderr: String,
}

/// One task's Terraform session in its working directory.
pub struct Terraform<'a> {
    /// The binary.
    pub binary: &'a Path,
    /// Working directory (the task's).
    pub dir: &'a Path,
    /// The sandbox the binary runs in.
    pub jail: &'a Jail,
    /// The complete environment of the child.
    pub env: &'a [(String, String)],
    /// When the task must be done.
    pub deadline: Instant,
    /// Total time limit, for messages.
    pub timeout: Duration,
    /// Becomes `Some(reason)` when the task must stop.
    pub cancel: watch::Receiver<Option<String>>,
    /// Where output goes (`None`: nowhere, as for a plan's preview).
    pub log: Option<&'a TaskLog>,
    /// Masks the job's secrets in what is logged and in the stderr kept for `StatusMessage`.
    pub redactor: &'a Redactor,
}

impl Terraform<'_> {
    /// Runs `terraform ARGS`, logging its output under `label` (`None`: not logged, for commands
    /// whose output holds secrets), and returns its status and captured stdout (unlogged
    /// commands only, up to `MAX_STDOUT`).
    pub async fn run(&self, label: Option<&str>, args: &[&str]) -> Result<(Finished, String), RunError> {
        let mut child = self
            .jail
            .command(self.binary, args)
            .current_dir(self.dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RunError::Spawn { binary: self.binary.display().to_string(), source })?;
        let pgid = child.id().map(|id| Pid::from_raw(id as i32));
        if let Some(pgid) = pgid {
            let _ = std::fs::write(pgid_file(self.dir), pgid.as_raw().to_string());
        }
        let log = |stream| label.zip(self.log).map(|(label, log)| (log, label, stream));
        // An unlogged command's stdout is parsed (JSON), never shown: it is kept as printed.
        let stdout_redactor = label.is_some().then_some(self.redactor);
        let stdout = read_stream(child.stdout.take().expect("piped"), log("stdout"), label.is_none().then_some(MAX_STDOUT), stdout_redactor);
        let stderr = read_stream(child.stderr.take().expect("piped"), log("stderr"), Some(STDERR_TAIL), Some(self.redactor));
        let mut cancel = self.cancel.clone();
        // Interrupting happens inside this future, while the readers still drain the pipes.
        let waited = async {
            let stop = tokio::select! {
                status = child.wait() => return status.map_err(|e| RunError::Spawn { binary: self.binary.display().to_string(), source: e }),
                _ = tokio::time::sleep_until(self.deadline) => RunError::TimedOut(self.timeout.as_secs()),
                reason = wait_cancel(&mut cancel) => RunError::Cancelled(reason),
            };
            if let Some(pgid) = pgid {
                interrupt_group(pgid, &mut child).await;
            }
            Err(stop)
        };
        let (waited, stdout, stderr) = tokio::join!(waited, stdout, stderr);
        let _ = std::fs::remove_file(pgid_file(self.dir));
        waited.map(|status| (Finished { status, stderr }, stdout))
    }
}

async fn wait_cancel(cancel: &mut watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(reason) = cancel.borrow().clone() {
            return reason;
        }
        if cancel.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// SIGINT to the group, then SIGKILL after the grace period.
async fn interrupt_group(pgid: Pid, child: &mut tokio::process::Child) {
    let _ = killpg(pgid, Signal::SIGINT);
    if tokio::time::timeout(INTERRUPT_GRACE, child.wait()).await.is_err() {
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
}

/// Kills the process group of the command running in `dir`, or left there by a previous run of
/// the server (recorded beside it).
pub fn kill_leftover_group(dir: &Path) {
    let file = pgid_file(dir);
    if let Some(pgid) = std::fs::read_to_string(&file).ok().and_then(|s| s.trim().parse::<i32>().ok()).filter(|&pgid| pgid > 1) {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        let _ = std::fs::remove_file(&file);
    }
}

/// Most stdout kept of an unlogged command (`output -json`, `show -json` of a plan).
const MAX_STDOUT: usize = 64 * 1024 * 1024;

/// The end of stderr kept for a task's `StatusMessage`.
const STDERR_TAIL: usize = 64 * 1024;

/// Reads a stream line by line into the log; returns the last `keep` bytes of what was read (at
/// least; nothing without `keep`), so stderr can become a task's `StatusMessage` and JSON output
/// can be parsed. With a redactor, each line is masked before it goes anywhere: this is where
/// Terraform's text enters the service.
async fn read_stream(
    stream: impl AsyncRead + Unpin,
    log: Option<(&TaskLog, &str, &str)>,
    keep: Option<usize>,
    redactor: Option<&Redactor>,
) -> String {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let mut captured = String::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let mut text = String::from_utf8_lossy(&line);
                if let Some(redactor) = redactor {
                    if let Cow::Owned(masked) = redactor.redact(&text) {
                        text = Cow::Owned(masked);
                    }
                }
                if let Some((log, command, name)) = log {
                    log.push(command, name, &text);
                }
                if let Some(keep) = keep {
                    captured.push_str(&text);
                    if captured.len() > 2 * keep {
                        let mut cut = captured.len() - keep;
                        while !captured.is_char_boundary(cut) {
                            cut += 1;
                        }
                        captured.drain(..cut);
                    }
                }
            }
        }
    }
    captured
}

/// Terraform's error text from its stderr, for a task's `StatusMessage`: the `Error:` blocks when
/// there are any, else the last lines; at most 4 KiB.
pub fn error_summary(stderr: &str) -> String {
    let text = stderr.trim();
    let from = text.find("Error: ").map_or(0, |i| text[..i].rfind('\n').map_or(0, |n| n + 1));
    let mut summary: String = text[from..].lines().map(|l| l.trim_start_matches(['│', '╷', '╵', ' '])).collect::<Vec<_>>().join("\n");
    summary = summary.trim().to_string();
    if summary.len() > 4096 {
        let mut cut = 4096;
        while !summary.is_char_boundary(cut) {
            cut -= 1;
        }
        summary.truncate(cut);
        summary.push('…');
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_summary_keeps_terraforms_error_without_box_drawing() {
        let stderr = "\n╷\n│ Error: Invalid value for variable\n│ \n│   on main.tf line 1:\n│    1: variable \"n\" {\n╵\n";
        let s = error_summary(stderr);
        assert!(s.starts_with("Error: Invalid value for variable"));
        assert!(s.contains("on main.tf line 1:"));
        assert!(!s.contains('│'));
    }

    #[tokio::test]
    async fn streams_are_masked_line_by_line_unless_parsed() {
        let redactor = Redactor::new(["multi-line\nsecret-value"]);
        let printed: &[u8] = b"Error: bad multi-line\nsecret-value here\n";
        let kept = read_stream(printed, None, Some(STDERR_TAIL), Some(&redactor)).await;
        assert_eq!(kept, "Error: bad ******\n****** here\n");
        assert_eq!(read_stream(printed, None, Some(MAX_STDOUT), None).await, String::from_utf8_lossy(printed));
    }

    #[test]
    fn the_configured_binary_wins() {
        assert_eq!(find_binary(Some(Path::new("/x/terraform"))), Some(PathBuf::from("/x/terraform")));
    }
}
