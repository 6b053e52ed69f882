//! Terraform's sandbox. Every Terraform process of a task or plan preview runs under bubblewrap
//! (started by the job's runner, [`super::runner`], one sandbox per job) in its own mount, PID,
//! IPC and UTS namespaces, as an unprivileged user, seeing only the
//! host's system software (`/usr`, read-only), a few files of `/etc` a provider needs (DNS,
//! CA certificates), its working directory, its product's sandbox directory, the Terraform
//! binary and the provider mirror (read-only), a private `/tmp`, `/dev` and a `/proc` of its own
//! PID namespace. Nothing else of the host exists there: no data directory, master key,
//! credentials, database, other jobs' directories, server processes or environment.
//!
//! When the server runs as root, each worker slot has a user of its own (`--task-uid-base` plus
//! the slot), so that the process limit bounds one job and jobs cannot signal one another; the
//! job's directories are handed to that user. Otherwise bubblewrap makes a user namespace and
//! Terraform runs as the server's user without any capability. Resource limits (data memory,
//! processes, file size) are `setrlimit` limits set before bubblewrap starts; wall time is the
//! task's time limit. The network is the host's unless the operator or the product turns it
//! off: then the job has a network namespace with loopback only.
//!
//! bubblewrap rather than namespaces made in-process: it is small, audited, packaged everywhere,
//! and does the fiddly parts (PID 1 reaper, `--die-with-parent`, mount ordering) that a fork of a
//! multi-threaded server could only do through `pre_exec` code that must stay async-signal-safe.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{lchown, OpenOptionsExt};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::runner::RUNNER_ARG;

/// How Terraform is isolated from the host (`--task-isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// bubblewrap namespaces, an unprivileged user and resource limits.
    Bwrap,
    /// Terraform runs as the server's user with the server's view of the host (resource limits
    /// still apply). Only for hosts that cannot sandbox, at the operator's word.
    None,
}

impl Isolation {
    /// The name shown in logs and `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::Bwrap => "bwrap",
            Isolation::None => "none",
        }
    }
}

/// The operator's network setting (`--task-network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Network {
    /// Jobs use the host's network (real providers need it).
    On,
    /// Jobs have loopback only.
    Off,
}

/// The operator's sandbox settings.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Isolation mode.
    pub isolation: Isolation,
    /// Whether jobs reach the network (a product's `Sandbox` constraint can still turn it off).
    pub network: bool,
    /// Largest data segment (heap) of each Terraform process, in MiB (`RLIMIT_DATA`).
    pub memory_mib: u64,
    /// Most processes of one job's user (`RLIMIT_NPROC`; needs a user per slot, i.e. root).
    pub processes: u64,
    /// Largest file a job may write, in MiB (`RLIMIT_FSIZE`).
    pub file_size_mib: u64,
    /// First user id of the worker slots' users when the server runs as root.
    pub uid_base: u32,
}

/// Why the host cannot sandbox.
#[derive(Debug, thiserror::Error)]
#[error("Terraform cannot be sandboxed on this host ({0}). Install bubblewrap (Debian package `bubblewrap`; `scripts/setup` does), or start with --task-isolation none to run Terraform unsandboxed as the server's user")]
pub struct Unavailable(String);

/// The sandbox of one node: how each job's Terraform is started.
#[derive(Debug, Clone)]
pub struct Sandbox {
    config: SandboxSettings,
    /// bubblewrap and, when the server is root, setpriv (which drops to the slot's user).
    tools: Option<(PathBuf, Option<PathBuf>)>,
}

/// Files of `/etc` a job may read: name resolution, CA certificates, users, time zone, the
/// system's program alternatives and perl's configuration.
const ETC_FILES: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/perl",
];

/// Top-level names that are, on merged-/usr systems, links into `/usr`.
const USR_LINKS: &[&str] = &["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

impl Sandbox {
    /// The sandbox the settings ask for; with bubblewrap, checks that it really runs here. A node
    /// that runs no job (`runs_jobs` false) needs nothing and checks nothing.
    pub fn new(config: SandboxSettings, runs_jobs: bool) -> Result<Sandbox, Unavailable> {
        if config.isolation == Isolation::None || !runs_jobs {
            return Ok(Sandbox { config, tools: None });
        }
        let bwrap = find_program("bwrap").ok_or_else(|| Unavailable("bwrap is not on PATH".into()))?;
        let setpriv = if is_root() {
            Some(find_program("setpriv").ok_or_else(|| Unavailable("setpriv (util-linux) is not on PATH".into()))?)
        } else {
            None
        };
        let sandbox = Sandbox { config, tools: Some((bwrap, setpriv)) };
        sandbox.probe()?;
        Ok(sandbox)
    }

    /// The isolation in force.
    pub fn isolation(&self) -> Isolation {
        self.config.isolation
    }

    /// The sandbox of one job run by worker `slot`: its runner and Terraform see `dir` (the
    /// working directory) and `product_dir` (writable), `binary` and `read_only` (the provider
    /// mirror, the job's prepared init) read-only.
    pub fn jail(&self, slot: usize, dir: &Path, product_dir: &Path, binary: &Path, read_only: &[&Path], network: bool) -> Jail {
        let runner = std::env::current_exe().and_then(|exe| exe.canonicalize()).unwrap_or_else(|_| PathBuf::from("servicecatalog"));
        let binary = binary.canonicalize().unwrap_or_else(|_| binary.to_path_buf());
        let Some((bwrap, setpriv)) = &self.tools else {
            assert_eq!(self.config.isolation, Isolation::None, "a node that runs no job was asked to run one");
            let prefix = vec![RUNNER_ARG.into(), binary.into()];
            return Jail { program: runner, prefix, uid: None, limits: self.limits(false) };
        };
        let uid = setpriv.as_ref().map(|_| self.config.uid_base + slot as u32);
        let mut prefix = base_arguments(network && self.config.network);
        let mut made = BTreeSet::new();
        bind(&mut prefix, &mut made, "--ro-bind", &runner);
        bind(&mut prefix, &mut made, "--ro-bind", &binary);
        for path in read_only {
            bind(&mut prefix, &mut made, "--ro-bind", path);
        }
        bind(&mut prefix, &mut made, "--bind", product_dir);
        bind(&mut prefix, &mut made, "--bind", dir);
        prefix.extend(["--chdir".into(), dir.into()]);
        prefix.push("--".into());
        if let (Some(setpriv), Some(uid)) = (setpriv, uid) {
            prefix.push(setpriv.into());
            prefix.extend(
                [format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into(), "--no-new-privs".into()].map(OsString::from),
            );
            prefix.push("--".into());
        }
        prefix.extend([runner.into(), RUNNER_ARG.into(), binary.into()]);
        Jail { program: bwrap.clone(), prefix, uid, limits: self.limits(uid.is_some()) }
    }

    /// The limits of a job; the process limit counts every process of the user, so it applies
    /// only when the job has a user of its own.
    fn limits(&self, own_user: bool) -> Limits {
        const MIB: u64 = 1024 * 1024;
        Limits {
            data: self.config.memory_mib.saturating_mul(MIB),
            processes: own_user.then_some(self.config.processes),
            file_size: self.config.file_size_mib.saturating_mul(MIB),
        }
    }

    /// Starts the runner in an empty sandbox: the host refuses namespaces, or setpriv cannot drop.
    fn probe(&self) -> Result<(), Unavailable> {
        let empty = tempdir_for_probe().map_err(|e| Unavailable(format!("cannot make a probe directory: {e}")))?;
        let truth = find_program("true").unwrap_or_else(|| PathBuf::from("/usr/bin/true"));
        if let Some(uid) = self.tools.as_ref().and_then(|(_, setpriv)| setpriv.as_ref()).map(|_| self.config.uid_base) {
            lchown(&empty, Some(uid), Some(uid)).map_err(|e| Unavailable(format!("cannot hand a directory to user {uid}: {e}")))?;
        }
        let jail = self.jail(0, &empty, &empty, &truth, &[], self.config.network);
        // The runner exits at once: its stdin is empty.
        let output = jail.std_command().stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).output();
        let _ = std::fs::remove_dir(&empty);
        match output {
            Ok(output) if output.status.success() => Ok(()),
            Ok(output) => Err(Unavailable(format!("bwrap failed: {}", String::from_utf8_lossy(&output.stderr).trim()))),
            Err(e) => Err(Unavailable(format!("cannot start bwrap: {e}"))),
        }
    }
}

/// Arguments every sandbox starts with: namespaces, the read-only system, a private /tmp.
fn base_arguments(network: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> =
        ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", "terraform", "--die-with-parent"].map(OsString::from).to_vec();
    if !network {
        args.push("--unshare-net".into());
    }
    if !is_root() {
        args.push("--unshare-user".into());
    }
    args.extend(["--ro-bind", "/usr", "/usr"].map(OsString::from));
    for link in USR_LINKS {
        match std::fs::read_link(link) {
            Ok(target) => args.extend(["--symlink".into(), target.into(), OsString::from(link)]),
            Err(_) if Path::new(link).is_dir() => args.extend(["--ro-bind", link, link].map(OsString::from)),
            Err(_) => {}
        }
    }
    args.extend(["--perms", "0755", "--dir", "/etc"].map(OsString::from));
    for file in ETC_FILES {
        args.extend(["--ro-bind-try", file, file].map(OsString::from));
    }
    args.extend(["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"].map(OsString::from));
    args
}

/// Binds `path` at the same place in the sandbox. Its missing ancestors are made first, open to
/// all (0755): bubblewrap would copy the host's modes, and a private data directory (0700, root)
/// would hide the job's own directory from the job's user.
fn bind(args: &mut Vec<OsString>, made: &mut BTreeSet<PathBuf>, how: &str, path: &Path) {
    let mut ancestors: Vec<&Path> = path.ancestors().skip(1).filter(|a| a.parent().is_some()).collect();
    ancestors.reverse();
    for ancestor in ancestors {
        if made.insert(ancestor.to_path_buf()) {
            args.extend(["--perms".into(), "0755".into(), "--dir".into(), ancestor.into()]);
        }
    }
    args.extend([how.into(), path.into(), path.into()]);
}

/// Resource limits of a job's processes, in bytes and processes.
#[derive(Debug, Clone, Copy)]
struct Limits {
    data: u64,
    processes: Option<u64>,
    file_size: u64,
}

/// How one job's runner is started.
#[derive(Debug)]
pub struct Jail {
    /// bubblewrap, or the runner itself when unsandboxed.
    program: PathBuf,
    /// Its arguments, up to and including the Terraform binary the runner runs.
    prefix: Vec<OsString>,
    /// The user the job runs as (root servers only).
    uid: Option<u32>,
    limits: Limits,
}

impl Jail {
    /// Hands `path` and everything below it (never following links) to the job's user.
    pub fn adopt(&self, path: &Path) -> io::Result<()> {
        let Some(uid) = self.uid else { return Ok(()) };
        lchown(path, Some(uid), Some(uid))?;
        if std::fs::symlink_metadata(path)?.is_dir() {
            for entry in std::fs::read_dir(path)? {
                self.adopt(&entry?.path())?;
            }
        }
        Ok(())
    }

    /// The command starting the job's runner (with an empty environment). It leads a session of
    /// its own, so that its process group is its pid; bubblewrap and the runner ignore SIGINT,
    /// which reaches Terraform (same group) for a graceful stop, while SIGKILL of the group ends
    /// the whole PID namespace.
    pub fn runner(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::from(self.std_command());
        command.kill_on_drop(true);
        command
    }

    /// `pre_exec` is the one `unsafe` here: the limits and the session must be set in the child
    /// between fork and exec (std offers no safe way to set another process's rlimits).
    #[allow(unsafe_code)]
    fn std_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command.args(&self.prefix).env_clear();
        let limits = self.limits;
        // SAFETY: only async-signal-safe calls (setsid, sigaction, setrlimit) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                nix::unistd::setsid()?;
                nix::sys::signal::signal(nix::sys::signal::Signal::SIGINT, nix::sys::signal::SigHandler::SigIgn)?;
                limits.apply()
            });
        }
        command
    }
}

impl Limits {
    fn apply(self) -> io::Result<()> {
        use nix::sys::resource::{setrlimit, Resource};
        setrlimit(Resource::RLIMIT_DATA, self.data, self.data)?;
        if let Some(processes) = self.processes {
            setrlimit(Resource::RLIMIT_NPROC, processes, processes)?;
        }
        setrlimit(Resource::RLIMIT_FSIZE, self.file_size, self.file_size)?;
        Ok(())
    }
}

/// Reads a file a job wrote, refusing a symbolic link in its place: a job must not make the
/// server read a host file it cannot see itself.
pub fn read_job_file(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut file = std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NOFOLLOW).open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `name` on PATH (or the usual system directories when PATH is unset).
pub(super) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

fn tempdir_for_probe() -> io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("servicecatalog-sandbox-probe-{}", std::process::id()));
    match std::fs::create_dir(&dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_path_gets_open_ancestors_once() {
        let (mut args, mut made) = (Vec::new(), BTreeSet::new());
        bind(&mut args, &mut made, "--bind", Path::new("/data/work/t-1"));
        bind(&mut args, &mut made, "--ro-bind", Path::new("/data/providers"));
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "--perms",
                "0755",
                "--dir",
                "/data",
                "--perms",
                "0755",
                "--dir",
                "/data/work",
                "--bind",
                "/data/work/t-1",
                "/data/work/t-1",
                "--ro-bind",
                "/data/providers",
                "/data/providers",
            ]
        );
    }

    #[test]
    fn the_network_is_unshared_only_when_off() {
        let has = |network| base_arguments(network).iter().any(|a| a == "--unshare-net");
        assert!(has(false) && !has(true));
        let always = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"];
        assert!(always.iter().all(|flag| base_arguments(true).iter().any(|a| a == flag)));
    }

    #[test]
    fn a_job_file_that_is_a_link_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "host file").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), dir.path().join("terraform.tfstate")).unwrap();
        assert!(read_job_file(&dir.path().join("terraform.tfstate")).is_err());
        assert_eq!(read_job_file(&dir.path().join("secret")).unwrap(), b"host file");
    }

    #[test]
    fn an_unsandboxed_jail_runs_the_runner_directly_with_limits() {
        let settings =
            SandboxSettings { isolation: Isolation::None, network: true, memory_mib: 64, processes: 16, file_size_mib: 1, uid_base: 70000 };
        let sandbox = Sandbox::new(settings, true).unwrap();
        let jail = sandbox.jail(3, Path::new("/w"), Path::new("/s"), Path::new("/bin/terraform-missing"), &[], true);
        assert_eq!(jail.prefix[0], RUNNER_ARG);
        assert_eq!(jail.uid, None);
        assert_eq!(jail.limits.processes, None);
        assert_eq!((jail.limits.data, jail.limits.file_size), (64 << 20, 1 << 20));
    }
}
