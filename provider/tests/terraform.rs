//! End-to-end tests: the freshly built provider, installed in a private filesystem mirror, driven by the
//! real `terraform` (the one on PATH, or `SANDBOX_TEST_TERRAFORM`). Every test skips with a notice when
//! there is no Terraform. No test asserts on elapsed time; waits are bounded only to fail instead of hanging.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

const PROVIDER_DIR: &str = "servicecatalog.local/demo/sandbox/0.1.0/linux_amd64";

/// A working directory with its own mirror, CLI configuration and sandbox.
struct Workspace {
    dir: tempfile::TempDir,
    terraform: PathBuf,
}

impl Workspace {
    /// A fresh workspace, or `None` (after a notice) when no Terraform is available.
    fn new(test: &str) -> Option<Self> {
        let Some(terraform) = find_terraform() else {
            println!("skipping {test}: no `terraform` on PATH and SANDBOX_TEST_TERRAFORM unset");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror").join(PROVIDER_DIR);
        std::fs::create_dir_all(&mirror).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_terraform-provider-sandbox"), mirror.join("terraform-provider-sandbox_v0.1.0"))
            .unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        std::fs::write(dir.path().join("terraformrc"), "").unwrap();
        Some(Self { dir, terraform })
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn sandbox(&self) -> PathBuf {
        self.dir.path().join("sandbox")
    }

    /// Writes `main.tf`: the provider set-up, with `root` set to the sandbox, followed by `resources`.
    fn configure(&self, resources: &str) {
        let provider = format!("provider \"sandbox\" {{\n  root = \"{}\"\n}}\n", self.sandbox().display());
        self.configure_provider(&provider, resources);
    }

    /// Writes `main.tf`: the required provider, then `provider`, then `resources`.
    fn configure_provider(&self, provider: &str, resources: &str) {
        let required = r#"terraform {
  required_providers {
    sandbox = { source = "servicecatalog.local/demo/sandbox", version = "0.1.0" }
  }
}
"#;
        std::fs::write(self.work().join("main.tf"), format!("{required}{provider}{resources}")).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.terraform);
        command
            .args(args)
            .current_dir(self.work())
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_FORK", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("terraformrc"))
            // Terraform passes its environment to the provider: its errors must stay free of backtraces.
            .env("RUST_BACKTRACE", "full")
            .env_remove("TF_LOG")
            .env_remove("TF_DATA_DIR")
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .stdin(Stdio::null());
        command
    }

    /// Runs Terraform to completion; returns the exit code and stdout + stderr.
    fn run(&self, args: &[&str]) -> (i32, String) {
        let Output { status, stdout, stderr } = self.command(args).output().unwrap();
        let text = String::from_utf8_lossy(&stdout).into_owned() + &String::from_utf8_lossy(&stderr);
        assert!(!text.to_lowercase().contains("stack backtrace"), "backtrace in output:\n{text}");
        (status.code().unwrap_or(-1), text)
    }

    /// Runs Terraform and expects exit code `code`.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        let (actual, text) = self.run(args);
        assert_eq!(actual, code, "terraform {args:?} exited {actual}:\n{text}");
        text
    }

    fn init(&self) {
        let plugin_dir = format!("-plugin-dir={}", self.dir.path().join("mirror").display());
        self.expect(0, &["init", "-no-color", "-input=false", &plugin_dir]);
    }

    fn apply(&self, code: i32) -> String {
        self.expect(code, &["apply", "-no-color", "-input=false", "-auto-approve"])
    }

    fn state_list(&self) -> String {
        self.expect(0, &["state", "list"])
    }
}

/// Starts `command` in its own process group, its stderr going to the file `stderr`, and returns once
/// it has begun creating `address`.
fn start_until_creating(mut command: Command, stderr: &Path, address: &str) -> Child {
    let mut child = command.stdout(Stdio::piped()).stderr(std::fs::File::create(stderr).unwrap()).process_group(0).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with(&format!("{address}: Creating...")) {
            // Keep draining stdout so that Terraform never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return child;
        }
        seen += &line;
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    panic!("{command:?} ended ({status}) before creating {address}:\n{seen}");
}

fn find_terraform() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SANDBOX_TEST_TERRAFORM") {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join("terraform")).find(|candidate| candidate.is_file())
}

fn file_resource(name: &str, path: &str, content: &str) -> String {
    format!("resource \"sandbox_file\" \"{name}\" {{\n  path    = \"{path}\"\n  content = \"{content}\"\n}}\n")
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn files_are_created_updated_replaced_refreshed_and_destroyed() {
    let Some(ws) = Workspace::new("files_are_created_updated_replaced_refreshed_and_destroyed") else {
        return;
    };
    let three = |b_content: &str, c_path: &str| {
        file_resource("a", "a.txt", "alpha") + &file_resource("b", "nested/dir/b.txt", b_content) + &file_resource("c", c_path, "gamma")
    };
    ws.configure(&three("beta", "c.txt"));
    ws.init();
    let out = ws.apply(0);
    assert!(out.contains("Apply complete! Resources: 3 added, 0 changed, 0 destroyed."), "{out}");
    assert_eq!(read(ws.sandbox().join("a.txt")), "alpha");
    assert_eq!(read(ws.sandbox().join("nested/dir/b.txt")), "beta");
    assert_eq!(read(ws.sandbox().join("c.txt")), "gamma");

    // New content: updated in place.
    ws.configure(&three("beta v2", "c.txt"));
    let out = ws.apply(0);
    assert!(out.contains("will be updated in-place"), "{out}");
    assert!(out.contains("Apply complete! Resources: 0 added, 1 changed, 0 destroyed."), "{out}");
    assert_eq!(read(ws.sandbox().join("nested/dir/b.txt")), "beta v2");

    // New path: replaced.
    ws.configure(&three("beta v2", "moved/c.txt"));
    let out = ws.apply(0);
    assert!(out.contains("must be replaced"), "{out}");
    assert!(out.contains("Apply complete! Resources: 1 added, 0 changed, 1 destroyed."), "{out}");
    assert!(!ws.sandbox().join("c.txt").exists());
    assert_eq!(read(ws.sandbox().join("moved/c.txt")), "gamma");

    // Nothing changed: an empty plan.
    ws.expect(0, &["plan", "-no-color", "-input=false", "-detailed-exitcode"]);

    // A hand-edited file plans an update, a deleted one a create.
    std::fs::write(ws.sandbox().join("a.txt"), "edited by hand").unwrap();
    std::fs::remove_file(ws.sandbox().join("moved/c.txt")).unwrap();
    let out = ws.expect(2, &["plan", "-no-color", "-input=false", "-detailed-exitcode"]);
    assert!(out.contains("sandbox_file.a will be updated in-place"), "{out}");
    assert!(out.contains("sandbox_file.c will be created"), "{out}");
    assert!(out.contains("Plan: 1 to add, 1 to change, 0 to destroy."), "{out}");
    ws.apply(0);
    assert_eq!(read(ws.sandbox().join("a.txt")), "alpha");

    let out = ws.expect(0, &["destroy", "-no-color", "-input=false", "-auto-approve"]);
    assert!(out.contains("Destroy complete! Resources: 3 destroyed."), "{out}");
    let left: Vec<_> = std::fs::read_dir(ws.sandbox()).unwrap().collect();
    assert!(left.is_empty(), "left in the sandbox: {left:?}");
}

#[test]
fn a_failure_after_a_file_leaves_the_file_in_state() {
    let Some(ws) = Workspace::new("a_failure_after_a_file_leaves_the_file_in_state") else {
        return;
    };
    ws.configure(
        &(file_resource("first", "first.txt", "kept")
            + r#"resource "sandbox_failure" "second" {
  message    = "deliberate failure for the test"
  depends_on = [sandbox_file.first]
}
"#),
    );
    ws.init();
    let out = ws.apply(1);
    assert!(out.contains("Error: deliberate failure for the test"), "{out}");
    assert_eq!(ws.state_list().trim(), "sandbox_file.first");
    assert_eq!(read(ws.sandbox().join("first.txt")), "kept");
}

#[test]
fn paths_leaving_the_sandbox_are_refused() {
    let Some(ws) = Workspace::new("paths_leaving_the_sandbox_are_refused") else {
        return;
    };
    ws.configure(&file_resource("up", "../escape.txt", "x"));
    ws.init();
    let out = ws.apply(1);
    assert!(out.contains("contains `..`"), "{out}");

    ws.configure(&file_resource("abs", "/tmp/escape.txt", "x"));
    let out = ws.apply(1);
    assert!(out.contains("is absolute"), "{out}");

    let outside = ws.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(ws.sandbox()).unwrap();
    std::os::unix::fs::symlink(&outside, ws.sandbox().join("link")).unwrap();
    ws.configure(&file_resource("via_link", "link/escape.txt", "x"));
    let out = ws.apply(1);
    assert!(out.contains("outside the sandbox"), "{out}");
    assert!(!outside.join("escape.txt").exists());
    assert_eq!(ws.state_list().trim(), "");
}

#[test]
fn the_root_can_come_from_the_environment() {
    let Some(ws) = Workspace::new("the_root_can_come_from_the_environment") else {
        return;
    };
    ws.configure_provider("provider \"sandbox\" {}\n", &file_resource("x", "x.txt", "from env"));
    ws.init();
    let apply = ["apply", "-no-color", "-input=false", "-auto-approve"];
    let out = ws.command(&apply).env_remove("SANDBOX_ROOT").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Error: No sandbox root"), "{stderr}");

    let out = ws.command(&apply).env("SANDBOX_ROOT", ws.sandbox()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read(ws.sandbox().join("x.txt")), "from env");
}

#[test]
fn sigint_to_the_process_group_does_not_kill_the_provider() {
    let Some(ws) = Workspace::new("sigint_to_the_process_group_does_not_kill_the_provider") else {
        return;
    };
    ws.configure("resource \"sandbox_sleep\" \"long\" {\n  duration_ms = 600000\n}\n");
    ws.init();
    let log = ws.dir.path().join("terraform.log");
    let mut apply = ws.command(&["apply", "-no-color", "-input=false", "-auto-approve"]);
    apply.env("TF_LOG", "debug").env("TF_LOG_PATH", &log);
    let mut child = start_until_creating(apply, &ws.dir.path().join("stderr"), "sandbox_sleep.long");
    let group = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    kill_process_group(group, Signal::INT).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(1));
    // go-plugin logs how each plugin process ended; a provider killed by the signal shows up here.
    let log = read(log);
    assert!(log.contains("plugin process exited"), "{log}");
    assert!(!log.contains("signal: interrupt"), "the provider died of SIGINT:\n{log}");
    // Usually the sleep answers with its own error. Terraform's StopProvider, sent at the same moment,
    // may win the race instead (see the README), so that message is not required.
    let stderr = read(ws.dir.path().join("stderr"));
    assert!(stderr.contains("Error: Sleep interrupted") || stderr.contains("Error: execution halted"), "{stderr}");
    assert_eq!(ws.state_list().trim(), "");
}

#[test]
fn the_provider_exits_when_terraform_is_killed() {
    let Some(ws) = Workspace::new("the_provider_exits_when_terraform_is_killed") else {
        return;
    };
    ws.configure("resource \"sandbox_sleep\" \"long\" {\n  duration_ms = 600000\n}\n");
    ws.init();
    let apply = ws.command(&["apply", "-no-color", "-input=false", "-auto-approve"]);
    let mut child = start_until_creating(apply, &ws.dir.path().join("stderr"), "sandbox_sleep.long");
    let providers: Vec<u32> = children_of(child.id())
        .into_iter()
        .filter(|pid| is_running(*pid) && process_name(*pid).is_some_and(|name| name.starts_with("terraform-prov")))
        .collect();
    assert!(!providers.is_empty(), "no provider process under terraform");
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(provider) = providers.iter().find(|pid| is_running(**pid)) {
        assert!(Instant::now() < deadline, "provider {provider} outlived terraform");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Process ids whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid| stat_fields(*pid).and_then(|fields| fields.get(1)?.parse().ok()) == Some(parent))
        .collect()
}

/// The fields of /proc/PID/stat after the command name: state, ppid, …
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn process_name(pid: u32) -> Option<String> {
    Some(std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?.trim().to_owned())
}

/// Whether `pid` is alive: present and not a zombie waiting to be reaped.
fn is_running(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|fields| fields[0] != "Z" && fields[0] != "X")
}
