//! The Terraform (and OpenTofu) binaries of a node, and which one runs a template. The operator
//! declares versioned binaries (`--terraform VERSION=PATH`, a `--terraform-dir` of
//! `terraform-<version>` and `tofu-<version>` executables) or names one binary without a version
//! (`--terraform PATH`, else `terraform`, then `tofu`, on PATH). Each binary's `version` is read
//! once at start; a declared version it does not report refuses the start. With versions
//! declared, a template's `Transform` selects the newest binary of its tool and `major.minor`
//! ([`Matching::Exact`]) or of its tool and major with a minor at least the one named
//! ([`Matching::Compatible`]); a `Transform` no binary serves is refused ([`Unserved`]). A single
//! undeclared binary serves every `Transform`, as before versions could be declared.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::sandbox::find_program;
use crate::model::{Tool, Transform};

/// How long a binary may take to print its version at start.
const VERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// A released version, `major.minor.patch` with an optional pre-release suffix (`1.6.0-beta1`).
/// A release orders after its pre-releases.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    major: u32,
    minor: u32,
    patch: u32,
    /// No pre-release suffix (so that it orders after those with one).
    release: bool,
    pre: String,
}

impl FromStr for Version {
    type Err = String;
    /// `1.0.3`, `v1.0.3` or `1.6.0-beta1`.
    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.strip_prefix('v').unwrap_or(s);
        let (numbers, pre) = text.split_once('-').unwrap_or((text, ""));
        let mut parts =
            numbers.split('.').map(|p| (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse().ok()).flatten());
        match (parts.next().flatten(), parts.next().flatten(), parts.next().flatten(), parts.next()) {
            (Some(major), Some(minor), Some(patch), None) if !text.ends_with('-') => {
                Ok(Version { major, minor, patch, release: pre.is_empty(), pre: pre.to_string() })
            }
            _ => Err(format!("{s:?} is not a version such as 1.0.3")),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.release {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

/// One `--terraform` value: a binary, with the version the operator says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declared {
    /// `PATH`: its version is what it reports.
    Path(PathBuf),
    /// `VERSION=PATH`: it must report that version.
    Versioned(Version, PathBuf),
}

impl FromStr for Declared {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((version, path)) if !version.contains('/') => {
                let version = version.parse().map_err(|e| format!("--terraform takes PATH or VERSION=PATH: {e}"))?;
                if path.is_empty() {
                    return Err(format!("--terraform {s}: the binary's path is missing"));
                }
                Ok(Declared::Versioned(version, PathBuf::from(path)))
            }
            _ if s.is_empty() => Err("--terraform takes PATH or VERSION=PATH, not an empty value".into()),
            _ => Ok(Declared::Path(PathBuf::from(s))),
        }
    }
}

/// Which binary serves a `Transform` naming `major.minor` (`--terraform-match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Matching {
    /// The newest binary of that `major.minor`.
    Exact,
    /// The newest binary of that major whose minor is at least the one named.
    Compatible,
}

/// What the operator configured: the `--terraform` values, `--terraform-dir` and `--terraform-match`.
#[derive(Debug, Clone)]
pub struct BinarySettings {
    /// `--terraform` values.
    pub declared: Vec<Declared>,
    /// A directory of `terraform-<version>` and `tofu-<version>` executables.
    pub dir: Option<PathBuf>,
    /// How a `Transform` selects among versions.
    pub matching: Matching,
}

/// Which binary a file path holds: its path, size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryStamp(PathBuf, u64, std::time::SystemTime);

impl BinaryStamp {
    /// The stamp of the file at `binary` now, if it can be read.
    pub fn of(binary: &Path) -> Option<Self> {
        let meta = std::fs::metadata(binary).ok()?;
        Some(BinaryStamp(binary.to_path_buf(), meta.len(), meta.modified().ok()?))
    }
}

/// A binary and what it reported at start.
#[derive(Debug, Clone)]
pub struct Binary {
    /// Where it is.
    pub path: PathBuf,
    /// The tool it says it is.
    pub tool: Tool,
    /// The version it reported.
    pub version: Version,
    /// What `version -no-color` printed (the first line names the tool and version).
    pub version_text: String,
    /// The file as it was when it printed that.
    pub stamp: Option<BinaryStamp>,
}

impl Binary {
    /// The `Transform` of its release line.
    pub fn transform(&self) -> Transform {
        Transform { tool: self.tool, major: self.version.major, minor: self.version.minor }
    }

    /// Whether it runs templates of `transform` under `matching`.
    fn serves(&self, transform: Transform, matching: Matching) -> bool {
        let line = self.transform();
        line.tool == transform.tool
            && line.major == transform.major
            && match matching {
                Matching::Exact => line.minor == transform.minor,
                Matching::Compatible => line.minor >= transform.minor,
            }
    }
}

/// Why no binary runs a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unserved {
    /// None of the declared binaries serves its `Transform`.
    #[error("no binary of this service runs its Transform {transform}; the Transforms served are {served}")]
    Transform {
        /// The template's `Transform`.
        transform: Transform,
        /// What is served, for the message.
        served: String,
    },
    /// No binary is configured and none is on PATH.
    #[error("No Terraform binary was found: configure --terraform or put terraform or tofu on PATH.")]
    NoBinary,
}

/// Why the configured binaries cannot be used: the node does not start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(String);

/// The binaries of a node.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// Terraform's, then OpenTofu's, each newest first.
    binaries: Vec<Binary>,
    /// Whether versions were declared (else the one binary, if any, serves every `Transform`).
    strict: bool,
    matching: Matching,
}

impl Binaries {
    /// Finds the configured binaries and reads each one's version (running `<binary> version`
    /// on the host); a declared version, or a tool named by a file name, that disagrees with what
    /// the binary reports is refused.
    pub async fn discover(settings: &BinarySettings) -> Result<Binaries, Unusable> {
        let mut wanted: Vec<Wanted> = Vec::new();
        for declared in &settings.declared {
            wanted.push(match declared {
                Declared::Path(path) => (path.clone(), None),
                Declared::Versioned(version, path) => (path.clone(), Some((None, version.clone()))),
            });
        }
        if let Some(dir) = &settings.dir {
            let found = versioned_files(dir)?;
            if found.is_empty() {
                return Err(Unusable(format!(
                    "--terraform-dir {}: no terraform-<version> or tofu-<version> executable is there",
                    dir.display()
                )));
            }
            wanted.extend(found.into_iter().map(|(path, tool, version)| (path, Some((Some(tool), version)))));
        }
        let strict = settings.dir.is_some() || wanted.len() > 1 || wanted.iter().any(|(_, version)| version.is_some());
        if wanted.is_empty() {
            if let Some(path) = find_program("terraform").or_else(|| find_program("tofu")) {
                wanted.push((path, None));
            }
        }
        let mut binaries: Vec<Binary> = Vec::new();
        for (path, expected) in wanted {
            let binary = read_version(&path).await?;
            if let Some((tool, version)) = expected {
                if tool.is_some_and(|tool| tool != binary.tool) || version != binary.version {
                    return Err(Unusable(format!(
                        "{} was declared as {}{version} but reports {} {}",
                        path.display(),
                        tool.map(|t| format!("{} ", t.name())).unwrap_or_default(),
                        binary.tool.name(),
                        binary.version
                    )));
                }
            }
            if let Some(twin) = binaries.iter().find(|b| b.tool == binary.tool && b.version == binary.version) {
                if same_file(&twin.path, &binary.path) {
                    continue;
                }
                return Err(Unusable(format!(
                    "{} and {} are both {} {}: declare each version once",
                    twin.path.display(),
                    binary.path.display(),
                    binary.tool.name(),
                    binary.version
                )));
            }
            binaries.push(binary);
        }
        Ok(Binaries::new(binaries, strict, settings.matching))
    }

    /// Binaries already read: `strict` when their versions were declared.
    pub fn new(mut binaries: Vec<Binary>, strict: bool, matching: Matching) -> Binaries {
        binaries.sort_by(|a, b| a.tool.cmp(&b.tool).then_with(|| b.version.cmp(&a.version)));
        Binaries { binaries, strict, matching }
    }

    /// Whether versions were declared: each binary serves its release line only.
    pub fn declared(&self) -> bool {
        self.strict
    }

    /// Every binary: Terraform's, then OpenTofu's, each newest first.
    pub fn all(&self) -> &[Binary] {
        &self.binaries
    }

    /// The binary that runs templates of `transform`.
    pub fn select(&self, transform: Transform) -> Result<&Binary, Unserved> {
        if !self.strict {
            return self.binaries.first().ok_or(Unserved::NoBinary);
        }
        self.binaries.iter().find(|b| b.serves(transform, self.matching)).ok_or_else(|| self.unserved(transform))
    }

    /// Refuses a `transform` the declared binaries do not serve (a node that declares none takes
    /// every one: its binary, or one put on PATH later, runs it).
    pub fn check(&self, transform: Transform) -> Result<(), Unserved> {
        match self.select(transform) {
            Err(Unserved::NoBinary) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `wanted` when it is served, else the newest release line served (Terraform's first): what
    /// templates written for any version (the sample catalog's, the console's pasted `main.tf`)
    /// declare.
    pub fn preferred(&self, wanted: Transform) -> Transform {
        if self.check(wanted).is_ok() {
            return wanted;
        }
        let newest = |tool| self.binaries.iter().find(|b| b.tool == tool).map(Binary::transform);
        newest(Tool::Terraform).or_else(|| newest(Tool::OpenTofu)).unwrap_or(wanted)
    }

    fn unserved(&self, transform: Transform) -> Unserved {
        let (mut seen, mut lines) = (Vec::new(), Vec::new());
        for binary in &self.binaries {
            if !seen.contains(&binary.transform()) {
                seen.push(binary.transform());
                lines.push(format!("{} ({} {})", binary.transform(), binary.tool.name(), binary.version));
            }
        }
        let mut served = lines.join(", ");
        if self.matching == Matching::Compatible {
            served.push_str(", each also serving the earlier minor versions of its major version");
        }
        Unserved::Transform { transform, served }
    }
}

/// A binary to read, with the version it must report (and its tool, when a file name says it).
type Wanted = (PathBuf, Option<(Option<Tool>, Version)>);

/// The `terraform-<version>` and `tofu-<version>` executables of `dir`: path, tool, version.
fn versioned_files(dir: &Path) -> Result<Vec<(PathBuf, Tool, Version)>, Unusable> {
    let entries = std::fs::read_dir(dir).map_err(|e| Unusable(format!("--terraform-dir {}: {e}", dir.display())))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((tool, version)) = versioned_name(&name) else { continue };
        let path = entry.path();
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            found.push((path, tool, version));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// The tool and version a file name `terraform-<version>` or `tofu-<version>` declares.
fn versioned_name(name: &str) -> Option<(Tool, Version)> {
    let (tool, version) = match name.split_once('-')? {
        ("terraform", version) => (Tool::Terraform, version),
        ("tofu", version) => (Tool::OpenTofu, version),
        _ => return None,
    };
    Some((tool, version.parse().ok()?))
}

/// The tool and version named by the first line of `version`'s output (`Terraform v1.0.3`,
/// `OpenTofu v1.8.0`).
fn reported(text: &str) -> Option<(Tool, Version)> {
    let (name, version) = text.lines().next()?.trim().split_once(' ')?;
    let tool = [Tool::Terraform, Tool::OpenTofu].into_iter().find(|t| t.name() == name)?;
    Some((tool, version.trim().parse().ok()?))
}

/// Runs `<path> version -no-color` on the host (no update check) and reads what it reports.
async fn read_version(path: &Path) -> Result<Binary, Unusable> {
    let unusable = |why: String| Unusable(format!("cannot use {} as a Terraform binary: {why}", path.display()));
    let stamp = BinaryStamp::of(path);
    let run = tokio::process::Command::new(path)
        .args(["version", "-no-color"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CHECKPOINT_DISABLE", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(VERSION_TIMEOUT, run).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(unusable(e.to_string())),
        Err(_) => return Err(unusable(format!("`version` did not answer within {} seconds", VERSION_TIMEOUT.as_secs()))),
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (tool, version) = match reported(&text) {
        Some(found) if output.status.success() => found,
        _ => return Err(unusable(format!("`version` printed no Terraform or OpenTofu version ({})", output.status))),
    };
    Ok(Binary { path: path.to_path_buf(), tool, version, version_text: text, stamp })
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(tool: Tool, version: &str) -> Binary {
        let path = PathBuf::from(format!("/opt/{}-{version}", tool.name()));
        Binary { path, tool, version: version.parse().unwrap(), version_text: String::new(), stamp: None }
    }

    fn transform(text: &str) -> Transform {
        text.parse().unwrap()
    }

    fn selected(binaries: &Binaries, text: &str) -> Result<String, Unserved> {
        binaries.select(transform(text)).map(|b| format!("{} {}", b.tool.name(), b.version))
    }

    #[test]
    fn versions_parse_and_order() {
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert_eq!(v("v1.0.3"), v("1.0.3"));
        assert_eq!(v("1.6.0-beta1").to_string(), "1.6.0-beta1");
        assert!(v("1.10.0") > v("1.9.12") && v("1.6.0") > v("1.6.0-rc1") && v("1.6.0-rc1") > v("1.5.7"));
        for bad in ["1.0", "1.0.3.4", "1..3", "x", "1.0.3-", ""] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }

    #[test]
    fn declared_binaries_are_path_or_version_and_path() {
        assert_eq!("/usr/bin/terraform".parse(), Ok(Declared::Path("/usr/bin/terraform".into())));
        assert_eq!("1.0.3=/opt/tf".parse(), Ok(Declared::Versioned("1.0.3".parse().unwrap(), "/opt/tf".into())));
        assert_eq!("/opt/a=b/terraform".parse(), Ok(Declared::Path("/opt/a=b/terraform".into())));
        assert!("1.0=/opt/tf".parse::<Declared>().unwrap_err().contains("VERSION=PATH"));
        assert!("1.0.3=".parse::<Declared>().unwrap_err().contains("path is missing"));
    }

    #[test]
    fn file_names_and_version_output_name_tool_and_version() {
        assert_eq!(versioned_name("terraform-1.0.3"), Some((Tool::Terraform, "1.0.3".parse().unwrap())));
        assert_eq!(versioned_name("tofu-1.8.0"), Some((Tool::OpenTofu, "1.8.0".parse().unwrap())));
        assert_eq!(versioned_name("terraform"), None);
        assert_eq!(versioned_name("terraform-latest"), None);
        assert_eq!(versioned_name("packer-1.0.0"), None);
        assert_eq!(reported("Terraform v1.11.4\non linux_amd64\n"), Some((Tool::Terraform, "1.11.4".parse().unwrap())));
        assert_eq!(reported("OpenTofu v1.8.0\non linux_amd64\n"), Some((Tool::OpenTofu, "1.8.0".parse().unwrap())));
        assert_eq!(reported("Terraform v0.12.31\n"), Some((Tool::Terraform, "0.12.31".parse().unwrap())));
        assert_eq!(reported("Usage: terraform"), None);
    }

    #[test]
    fn a_transform_selects_the_newest_binary_of_its_release_line() {
        let binaries = Binaries::new(
            vec![
                binary(Tool::Terraform, "1.0.3"),
                binary(Tool::Terraform, "1.0.11"),
                binary(Tool::Terraform, "1.11.4"),
                binary(Tool::OpenTofu, "1.8.0"),
                binary(Tool::OpenTofu, "1.8.5"),
            ],
            true,
            Matching::Exact,
        );
        assert_eq!(selected(&binaries, "Aliyun::Terraform-v1.0").unwrap(), "Terraform 1.0.11");
        assert_eq!(selected(&binaries, "Aliyun::Terraform-v1.11").unwrap(), "Terraform 1.11.4");
        assert_eq!(selected(&binaries, "Aliyun::OpenTofu-v1.8").unwrap(), "OpenTofu 1.8.5");
        // Terraform's and OpenTofu's version numbers are not interchangeable.
        let refused = selected(&binaries, "Aliyun::Terraform-v1.8").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "no binary of this service runs its Transform Aliyun::Terraform-v1.8; the Transforms served are \
             Aliyun::Terraform-v1.11 (Terraform 1.11.4), Aliyun::Terraform-v1.0 (Terraform 1.0.11), \
             Aliyun::OpenTofu-v1.8 (OpenTofu 1.8.5)"
        );
        assert!(binaries.check(transform("Aliyun::Terraform-v1.5")).is_err());
        assert!(binaries.check(transform("Aliyun::OpenTofu-v1.9")).is_err());
        assert_eq!(binaries.preferred(Transform::terraform(1, 0)), Transform::terraform(1, 0));
        assert_eq!(binaries.preferred(Transform::terraform(1, 5)), Transform::terraform(1, 11));
    }

    #[test]
    fn compatible_matching_takes_the_newest_minor_of_the_major() {
        let binaries = Binaries::new(
            vec![binary(Tool::Terraform, "1.5.7"), binary(Tool::Terraform, "1.11.4"), binary(Tool::Terraform, "0.12.31")],
            true,
            Matching::Compatible,
        );
        assert_eq!(selected(&binaries, "Aliyun::Terraform-v1.0").unwrap(), "Terraform 1.11.4");
        assert_eq!(selected(&binaries, "Aliyun::Terraform-v1.11").unwrap(), "Terraform 1.11.4");
        assert_eq!(selected(&binaries, "Aliyun::Terraform-v0.11").unwrap(), "Terraform 0.12.31");
        assert!(selected(&binaries, "Aliyun::Terraform-v1.12").unwrap_err().to_string().contains("earlier minor versions"));
        assert!(selected(&binaries, "Aliyun::OpenTofu-v1.0").is_err());
    }

    #[test]
    fn one_undeclared_binary_serves_every_transform() {
        let binaries = Binaries::new(vec![binary(Tool::OpenTofu, "1.8.0")], false, Matching::Exact);
        assert_eq!(selected(&binaries, "Aliyun::Terraform-v0.12").unwrap(), "OpenTofu 1.8.0");
        assert_eq!(binaries.preferred(Transform::terraform(1, 0)), Transform::terraform(1, 0));
        let none = Binaries::new(Vec::new(), false, Matching::Exact);
        assert_eq!(selected(&none, "Aliyun::Terraform-v1.0"), Err(Unserved::NoBinary));
        assert!(none.check(transform("Aliyun::Terraform-v1.0")).is_ok());
    }

    #[tokio::test]
    async fn a_declared_version_must_be_what_the_binary_reports() {
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, says: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\necho '{says}'\necho 'on linux_amd64'\n")).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            path
        };
        let (old, tofu) = (script("terraform-1.0.3", "Terraform v1.0.3"), script("tofu-1.8.0", "OpenTofu v1.8.0"));
        let settings = |declared: Vec<Declared>, dir: Option<PathBuf>| BinarySettings { declared, dir, matching: Matching::Exact };
        let found = Binaries::discover(&settings(Vec::new(), Some(dir.path().into()))).await.unwrap();
        let lines: Vec<String> = found.all().iter().map(|b| b.transform().to_string()).collect();
        assert_eq!(lines, ["Aliyun::Terraform-v1.0", "Aliyun::OpenTofu-v1.8"]);
        assert_eq!(found.all()[0].version_text, "Terraform v1.0.3\non linux_amd64\n");
        // The same file declared twice counts once.
        let twice = vec![Declared::Versioned("1.0.3".parse().unwrap(), old.clone())];
        assert_eq!(Binaries::discover(&settings(twice, Some(dir.path().into()))).await.unwrap().all().len(), 2);
        let wrong = vec![Declared::Versioned("1.0.4".parse().unwrap(), old.clone())];
        let refused = Binaries::discover(&settings(wrong, None)).await.unwrap_err().to_string();
        assert!(refused.contains("declared as 1.0.4 but reports Terraform 1.0.3"), "{refused}");
        let misnamed = script("terraform-1.8.0", "OpenTofu v1.8.0");
        let refused = Binaries::discover(&settings(Vec::new(), Some(dir.path().into()))).await.unwrap_err().to_string();
        assert!(refused.contains("declared as Terraform 1.8.0 but reports OpenTofu 1.8.0"), "{refused}");
        std::fs::remove_file(misnamed).unwrap();
        let not_terraform = script("other", "hello");
        let refused = Binaries::discover(&settings(vec![Declared::Path(not_terraform)], None)).await.unwrap_err().to_string();
        assert!(refused.contains("printed no Terraform or OpenTofu version"), "{refused}");
        // One undeclared binary is not strict; two are.
        assert!(Binaries::discover(&settings(vec![Declared::Path(tofu.clone())], None))
            .await
            .unwrap()
            .select(Transform::terraform(1, 0))
            .is_ok());
        let two = Binaries::discover(&settings(vec![Declared::Path(tofu), Declared::Path(old)], None)).await.unwrap();
        assert!(two.select(Transform::terraform(1, 5)).is_err());
    }
}
