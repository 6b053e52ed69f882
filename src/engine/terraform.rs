//! Running the `terraform` (or `tofu`) CLI for one job: argv without a shell, through the job's
//! runner ([`super::runner`]) in its sandbox ([`super::sandbox`]) and process group (Terraform
//! 1.0 re-executes itself; signalling the group reaches the real process), with an allow-listed
//! environment, each command's stdout and stderr streamed into the task log, and a deadline that
//! interrupts Terraform gracefully (SIGINT) and then by force (SIGKILL).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;

use super::logs::TaskLog;
use super::redact::Redactor;
use super::runner::{self, Frame};
use super::sandbox::Jail;
use super::EngineError;

/// Time Terraform gets to stop after SIGINT before it is killed.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

/// The file recording the process group of the command running in `dir`, for crash recovery:
/// beside the directory, where the job (which may write anything in it) cannot forge it.
fn pgid_file(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".pgid");
    dir.with_file_name(name)
}

/// What a finished command left.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// The end of its stderr (for `StatusMessage`).
    pub stderr: String,
}

impl Finished {
    /// The command's failure, unless it succeeded.
    pub fn check(&self, label: &'static str) -> Result<(), EngineError> {
        if self.status.success() {
            return Ok(());
        }
        Err(EngineError::Step { label, status: self.status, summary: error_summary(&self.stderr) })
    }
}

/// One job's Terraform session in its working directory: the job's runner (started in its
/// sandbox by the first command, ended with the session) runs each command.
pub struct Terraform<'a> {
    /// The binary.
    pub binary: PathBuf,
    /// Working directory (the job's).
    pub dir: PathBuf,
    /// The sandbox the runner starts in.
    pub jail: Jail,
    /// The complete environment of the commands.
    pub env: Vec<(String, String)>,
    /// When the job must be done.
    pub deadline: Instant,
    /// Total time limit, for messages.
    pub timeout: Duration,
    /// Becomes `Some(reason)` when the job must stop.
    pub cancel: watch::Receiver<Option<String>>,
    /// Where output goes (`None`: nowhere, as for a plan's preview).
    pub log: Option<&'a TaskLog>,
    /// Masks the job's secrets in what is logged and in the stderr kept for `StatusMessage`.
    pub redactor: Redactor,
    /// The job's runner, once started.
    pub runner: Mutex<Option<Runner>>,
}

/// A job's runner process (in its sandbox) and its pipes. Dropping it kills its process group,
/// which ends the sandbox and everything in it.
pub struct Runner {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    pgid: Option<Pid>,
    pgid_file: PathBuf,
    /// The end of the runner's own stderr (bubblewrap's complaints, say).
    stderr: Arc<std::sync::Mutex<String>>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.pgid_file);
    }
}

impl Terraform<'_> {
    /// Runs `terraform ARGS`, logging its output under `label` (`None`: not logged, for commands
    /// whose output holds secrets), and returns its status and captured stdout (unlogged
    /// commands only, up to `MAX_STDOUT`). At the deadline or on cancellation, Terraform gets
    /// SIGINT (a graceful stop that saves its state), then SIGKILL after [`INTERRUPT_GRACE`]; the
    /// runner ends with the command.
    pub async fn run(&self, label: Option<&str>, args: &[&str]) -> Result<(Finished, String), EngineError> {
        let mut slot = self.runner.lock().await;
        if slot.is_none() {
            *slot = Some(self.start_runner()?);
        }
        let runner = slot.as_mut().expect("started");
        let log = |stream| label.zip(self.log).map(|(label, log)| (log, label, stream));
        // An unlogged command's stdout is parsed (JSON), never shown: it is kept as printed.
        let mut stdout = Lines::new(log("stdout"), label.is_none().then_some(MAX_STDOUT), label.is_some().then_some(&self.redactor));
        let mut stderr = Lines::new(log("stderr"), Some(STDERR_TAIL), Some(&self.redactor));
        let mut cancel = self.cancel.clone();
        let mut stop: Option<EngineError> = None;
        let mut kill_at = Instant::now() + Duration::from_secs(365 * 86_400);
        let sent = runner.stdin.write_all(runner::command_line(args).as_bytes()).await;
        let ended = loop {
            if sent.is_err() {
                break None;
            }
            let frame = tokio::select! {
                frame = runner::read_frame(&mut runner.stdout) => frame,
                _ = tokio::time::sleep_until(self.deadline), if stop.is_none() => {
                    stop = Some(EngineError::TimedOut(self.timeout.as_secs()));
                    kill_at = runner.interrupt();
                    continue;
                }
                reason = wait_cancel(&mut cancel), if stop.is_none() => {
                    stop = Some(EngineError::Cancelled(reason));
                    kill_at = runner.interrupt();
                    continue;
                }
                _ = tokio::time::sleep_until(kill_at) => {
                    runner.kill();
                    continue;
                }
            };
            match frame {
                Ok(Some(Frame::Stdout(chunk))) => stdout.feed(&chunk),
                Ok(Some(Frame::Stderr(chunk))) => stderr.feed(&chunk),
                Ok(Some(Frame::Exit(status))) => break Some(status),
                Ok(None) | Err(_) => break None,
            }
        };
        let (stdout, stderr) = (stdout.finish(), stderr.finish());
        match (ended, stop) {
            (_, Some(stop)) => {
                *slot = None;
                Err(stop)
            }
            (Some(status), None) => Ok((Finished { status, stderr }, stdout)),
            (None, None) => {
                let said = slot.take().map(|runner| runner.stderr.lock().map(|s| s.trim().to_string()).unwrap_or_default());
                let said = said.filter(|s| !s.is_empty()).unwrap_or_else(|| "the job's runner stopped".into());
                Err(EngineError::Spawn { binary: self.binary.display().to_string(), source: std::io::Error::other(said) })
            }
        }
    }

    /// Starts the job's runner in its sandbox and records its process group beside the job's
    /// directory.
    fn start_runner(&self) -> Result<Runner, EngineError> {
        let mut child = self
            .jail
            .runner()
            .current_dir(&self.dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| EngineError::Spawn { binary: self.binary.display().to_string(), source })?;
        let pgid = child.id().map(|id| Pid::from_raw(id as i32));
        let pgid_file = pgid_file(&self.dir);
        if let Some(pgid) = pgid {
            let _ = std::fs::write(&pgid_file, pgid.as_raw().to_string());
        }
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        // The runner's and bubblewrap's own words (Terraform's output comes in frames): no job data.
        let mut lines = Lines::new(None, Some(4096), None);
        let (mut pipe, kept) = (child.stderr.take().expect("piped"), Arc::clone(&stderr));
        tokio::spawn(async move {
            let mut buf = vec![0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf).await {
                lines.feed(&buf[..n]);
            }
            *kept.lock().unwrap_or_else(|p| p.into_inner()) = lines.finish();
        });
        let (stdin, stdout) = (child.stdin.take().expect("piped"), child.stdout.take().expect("piped"));
        Ok(Runner { child, stdin, stdout, pgid, pgid_file, stderr })
    }
}

impl Runner {
    /// SIGINT to the group (Terraform stops gracefully; the runner and bubblewrap ignore it);
    /// returns when to kill it.
    fn interrupt(&self) -> Instant {
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, Signal::SIGINT);
        }
        Instant::now() + INTERRUPT_GRACE
    }

    /// SIGKILL to the group: the sandbox ends, and the runner's stdout with it.
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        let _ = self.child.start_kill();
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

/// One output stream of a command, cut into lines: each line is masked (with a redactor: this is
/// where Terraform's text enters the service), logged, and its end kept (`keep` bytes at least:
/// stderr becomes a task's `StatusMessage`, JSON output is parsed).
struct Lines<'a> {
    log: Option<(&'a TaskLog, &'a str, &'a str)>,
    keep: Option<usize>,
    redactor: Option<&'a Redactor>,
    partial: Vec<u8>,
    captured: String,
}

impl<'a> Lines<'a> {
    fn new(log: Option<(&'a TaskLog, &'a str, &'a str)>, keep: Option<usize>, redactor: Option<&'a Redactor>) -> Self {
        Lines { log, keep, redactor, partial: Vec::new(), captured: String::new() }
    }

    /// Takes a chunk of the stream.
    fn feed(&mut self, mut chunk: &[u8]) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.line(&chunk[..=end]);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&chunk[..=end]);
                self.line(&line);
            }
            chunk = &chunk[end + 1..];
        }
        self.partial.extend_from_slice(chunk);
    }

    /// The stream ended: its last line, and what was kept.
    fn finish(mut self) -> String {
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(&last);
        }
        self.captured
    }

    fn line(&mut self, line: &[u8]) {
        let mut text = String::from_utf8_lossy(line);
        if let Some(redactor) = self.redactor {
            if let Cow::Owned(masked) = redactor.redact(&text) {
                text = Cow::Owned(masked);
            }
        }
        if let Some((log, command, name)) = self.log {
            log.push(command, name, &text);
        }
        if let Some(keep) = self.keep {
            self.captured.push_str(&text);
            if self.captured.len() > 2 * keep {
                let mut cut = self.captured.len() - keep;
                while !self.captured.is_char_boundary(cut) {
                    cut += 1;
                }
                self.captured.drain(..cut);
            }
        }
    }
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

    #[test]
    fn streams_are_masked_line_by_line_unless_parsed() {
        let redactor = Redactor::new(["multi-line\nsecret-value"]);
        let printed: &[u8] = b"Error: bad multi-line\nsecret-value here\nno newline";
        // Lines cut across chunks are whole again before they are masked.
        let mut masked = Lines::new(None, Some(STDERR_TAIL), Some(&redactor));
        for chunk in printed.chunks(7) {
            masked.feed(chunk);
        }
        assert_eq!(masked.finish(), "Error: bad ******\n****** here\nno newline");
        let mut kept = Lines::new(None, Some(MAX_STDOUT), None);
        kept.feed(printed);
        assert_eq!(kept.finish(), String::from_utf8_lossy(printed));
    }
}
