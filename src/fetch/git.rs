//! Git sources through the `git` command: a shallow fetch of one reference into a temporary bare
//! repository (no work tree, so no checkout and no hooks), the files read from the fetched
//! commit's tree. Git runs without prompts, without the host's or user's configuration, with
//! hooks disabled, only the https, http and file protocols, and no redirects; credentials are
//! passed as an `http.extraHeader` through the environment, never on the command line.

use std::collections::BTreeMap;
use std::process::Stdio;

use tokio::process::Command;

use super::{Collector, FetchError, FetchResult, SourcePolicy};

/// Bytes of git's error output kept for a message.
const STDERR_BYTES: usize = 2000;

/// A `git` command for `repository` with the policy's hardening and credentials.
fn git(policy: &SourcePolicy, repository: &str, dir: Option<&std::path::Path>) -> Command {
    let mut command = Command::new("git");
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", "/nonexistent")
        .args(["-c", "core.hooksPath=/dev/null", "-c", "protocol.allow=never"])
        .args(["-c", "protocol.https.allow=always", "-c", "protocol.http.allow=always", "-c", "protocol.file.allow=always"])
        .args(["-c", "http.followRedirects=false", "-c", "credential.helper="])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(authorization) = policy.authorization(repository) {
        command
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", format!("Authorization: {authorization}"));
    }
    if let Some(dir) = dir {
        command.env("GIT_DIR", dir);
    }
    command
}

/// Runs `command`; its standard output, or a message with the end of its errors.
async fn run(command: &mut Command, what: &str) -> FetchResult<Vec<u8>> {
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| FetchError(format!("git could not be started: {e}.")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("hint:")).collect();
        let mut text = lines.join(" ");
        if text.len() > STDERR_BYTES {
            text = text[text.len() - STDERR_BYTES..].to_string();
        }
        return Err(FetchError(format!("{what} failed: {}", text.trim())));
    }
    Ok(output.stdout)
}

/// Fetches `reference` (default: the remote's HEAD) of `repository` and returns the Terraform
/// files under `subdir` with the commit they were read from.
pub(super) async fn fetch(
    policy: &SourcePolicy,
    repository: &str,
    subdir: &str,
    reference: Option<&str>,
) -> FetchResult<(BTreeMap<String, String>, String)> {
    let dir = tempfile::Builder::new()
        .prefix("servicecatalog-git-")
        .tempdir()
        .map_err(|e| FetchError(format!("no temporary directory for the repository: {e}.")))?;
    let git_dir = dir.path();
    run(git(policy, repository, None).args(["init", "-q", "--bare"]).arg(git_dir), "git init").await?;
    let wanted = reference.unwrap_or("HEAD");
    let mut fetch = git(policy, repository, Some(git_dir));
    fetch.args(["fetch", "-q", "--no-tags", "--depth=1", "--"]).arg(repository).arg(wanted);
    run(&mut fetch, &format!("fetching {wanted} of {repository}")).await.map_err(|e| match reference {
        Some(r) => FetchError(format!("{} (does the repository have the reference {r:?}?)", e.0.trim_end_matches('.'))),
        None => e,
    })?;
    let commit =
        run(git(policy, repository, Some(git_dir)).args(["rev-parse", "--verify", "FETCH_HEAD^{commit}"]), "git rev-parse").await?;
    let commit = String::from_utf8_lossy(&commit).trim().to_string();
    let listing =
        run(git(policy, repository, Some(git_dir)).args(["ls-tree", "-r", "-l", "-z", "--full-tree", &commit]), "git ls-tree").await?;
    let mut collector = Collector::new(subdir);
    let mut wanted_blobs = Vec::new();
    for line in listing.split(|b| *b == 0).filter(|l| !l.is_empty()) {
        // `<mode> <type> <object> <size>\t<path>`
        let line = String::from_utf8_lossy(line);
        let Some((meta, path)) = line.split_once('\t') else { continue };
        let fields: Vec<&str> = meta.split_whitespace().collect();
        let [mode, kind, object, size] = fields[..] else { continue };
        if kind != "blob" {
            continue; // submodules
        }
        let Some(relative) = collector.wanted(path, mode == "120000")? else { continue };
        Collector::size_ok(&relative, size.parse().unwrap_or(u64::MAX))?;
        wanted_blobs.push((relative, object.to_string()));
    }
    for (relative, object) in wanted_blobs {
        let content = run(git(policy, repository, Some(git_dir)).args(["cat-file", "blob", &object]), "git cat-file").await?;
        collector.take(relative, content)?;
    }
    Ok((collector.finish()?, commit))
}

/// The tags of `repository` (as `git ls-remote --tags` lists them, without peeled entries).
pub async fn tags(policy: &SourcePolicy, repository: &str) -> FetchResult<Vec<String>> {
    policy.check_allowed(repository)?;
    let mut command = git(policy, repository, None);
    command.args(["ls-remote", "--tags", "--refs", "--"]).arg(repository);
    let listing = tokio::time::timeout(policy.timeout, run(&mut command, &format!("listing the tags of {repository}")))
        .await
        .map_err(|_| FetchError(format!("listing the tags of {repository} took more than {} seconds.", policy.timeout.as_secs())))??;
    Ok(String::from_utf8_lossy(&listing)
        .lines()
        .filter_map(|line| line.split_once('\t').and_then(|(_, name)| name.strip_prefix("refs/tags/")).map(str::to_string))
        .collect())
}
