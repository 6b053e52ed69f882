//! Templates fetched from outside, once, when a product version is created (a documented
//! extension of `TemplateUrl`): `https://` and `http://` URLs of a `.tf`, `.tf.json`, `.zip` or
//! `.tar.gz`, and Git repositories in Terraform's module-source syntax
//! (`git::https://host/repo.git//subdir?ref=v1`, `git::file:///path/repo//subdir?ref=v1`). Owns
//! the operator's [`SourcePolicy`] (which URLs may be fetched, with which credentials, within
//! which limits), the parsing of such URLs ([`Location`]), and the fetching itself, which yields
//! the Terraform files of the tree in memory ([`Fetched`]): nothing is written where Terraform
//! or anyone else reads it, no symlink is followed, and every path is checked.
//!
//! Only what Terraform reads as configuration is taken: `.tf` and `.tf.json` files, outside
//! hidden files and directories (`.git/`, `.terraform/`, …), under the subdirectory named after
//! `//`. The catalog checks the result exactly like a pasted template.

mod archive;
mod git;
mod http;
mod policy;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use git::tags;
pub use policy::{under, Credential, SourceArgs, SourcePolicy};

/// Files taken from one tree: at most this many (the Workspace's own limit).
pub const MAX_FILES: usize = 50;
/// Bytes of one file taken (the Workspace's own limit).
pub const MAX_FILE_BYTES: u64 = 512 * 1024;
/// Entries an archive may hold, taken or not.
pub const MAX_ENTRIES: usize = 10_000;

/// Why a source could not be fetched: a message for the caller, without credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Result of this module.
pub type FetchResult<T> = Result<T, FetchError>;

/// Where a version's template came from, stored with the version and shown by
/// `GetProductVersion` and `ListProductVersions` as `TemplateSource`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateSource {
    /// The URL as the caller gave it.
    pub url: String,
    /// The commit a Git reference resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// sha256 of the bytes downloaded over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A fetched tree: relative path → content of its Terraform files, and where it came from.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The `.tf` and `.tf.json` files, paths relative to the subdirectory.
    pub files: BTreeMap<String, String>,
    /// Its origin.
    pub source: TemplateSource,
}

/// What a fetched HTTP file is, by the end of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// One `.tf` or `.tf.json` file, named like the URL's last segment.
    Terraform,
    /// A `.zip` archive.
    Zip,
    /// A `.tar.gz` (or `.tgz`) archive.
    TarGz,
}

/// A parsed template source URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `https://…` or `http://…`.
    Http {
        /// The URL fetched (without `//subdir`).
        url: String,
        /// What it holds.
        kind: FileKind,
        /// Subdirectory of an archive whose files are taken (`""`: all).
        subdir: String,
    },
    /// `git::<repository URL>[//subdir][?ref=REF]`.
    Git {
        /// The repository's URL (`https://`, `http://` or `file://`).
        repository: String,
        /// Subdirectory whose files are taken (`""`: the top).
        subdir: String,
        /// Tag, branch or commit (`None`: the default branch).
        reference: Option<String>,
    },
}

impl Location {
    /// The URL the allow-list and the credentials are matched against: the repository's for Git.
    pub fn url(&self) -> &str {
        match self {
            Location::Http { url, .. } => url,
            Location::Git { repository, .. } => repository,
        }
    }
}

/// Whether `url` names an outside source this module fetches (rather than a template uploaded
/// with `CreateTemplate`).
pub fn is_source(url: &str) -> bool {
    ["git::", "https://", "http://"].iter().any(|p| url.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p)))
}

/// Parses a source URL (see [`is_source`]).
pub fn parse(url: &str) -> FetchResult<Location> {
    let error = |why: &str| FetchError(format!("{:?} is not a template source URL: {why}.", without_userinfo(url)));
    let bad = |why: &str| Err(error(why));
    if let Some(rest) = url.strip_prefix("git::") {
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut reference = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "ref" if !value.is_empty() && !value.starts_with('-') => reference = Some(value.into_owned()),
                "ref" => return bad("?ref= must name a tag, branch or commit"),
                _ => return bad(&format!("the only query parameter of a Git source is ref, not {key:?}")),
            }
        }
        let (repository, subdir) = split_subdir(rest);
        let parsed = web_url(repository, &["https", "http", "file"]).map_err(|e| error(&e))?;
        if parsed.scheme() == "file" && (parsed.host_str().is_some_and(|h| !h.is_empty()) || parsed.path().len() <= 1) {
            return bad("a file:// repository is file:///absolute/path");
        }
        let subdir = check_subdir(subdir).map_err(|e| error(&e))?;
        return Ok(Location::Git { repository: repository.to_string(), subdir, reference });
    }
    let (fetched, subdir) = split_subdir(url);
    let parsed = web_url(fetched, &["https", "http"]).map_err(|e| error(&e))?;
    let path = parsed.path().to_ascii_lowercase();
    let kind = if path.ends_with(".tf") || path.ends_with(".tf.json") {
        FileKind::Terraform
    } else if path.ends_with(".zip") {
        FileKind::Zip
    } else if path.ends_with(".tar.gz") || path.ends_with(".tgz") {
        FileKind::TarGz
    } else {
        return bad("its path must end with .tf, .tf.json, .zip or .tar.gz (or name a Git repository as git::URL)");
    };
    if kind == FileKind::Terraform && !subdir.is_empty() {
        return bad("only an archive has subdirectories (//subdir)");
    }
    let subdir = check_subdir(subdir).map_err(|e| error(&e))?;
    Ok(Location::Http { url: fetched.to_string(), kind, subdir })
}

/// `url` without the `user:password@` of its authority, for messages.
fn without_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
        None => url.to_string(),
    }
}

/// Splits Terraform's `//subdir` off a URL: the first `//` after the scheme's `://`.
fn split_subdir(url: &str) -> (&str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    match url[start..].find("//") {
        // `file:///path`: the scheme's `://` is followed by the path's own `/`.
        Some(0) => match url[start + 1..].find("//") {
            Some(i) => (&url[..start + 1 + i], &url[start + 1 + i + 2..]),
            None => (url, ""),
        },
        Some(i) => (&url[..start + i], &url[start + i + 2..]),
        None => (url, ""),
    }
}

/// Parses `url`, refusing other schemes and credentials in the URL (they come from the
/// operator's configuration only).
fn web_url(url: &str, schemes: &[&str]) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{e}"))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(format!("the scheme must be one of {}", schemes.join(", ")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("it must not carry credentials (user:password@): the operator configures them for the server".into());
    }
    if parsed.fragment().is_some() {
        return Err("it must not have a #fragment".into());
    }
    Ok(parsed)
}

/// A `//subdir` without its trailing `/`: relative, no empty, `.` or `..` segment.
fn check_subdir(subdir: &str) -> Result<String, String> {
    let subdir = subdir.trim_end_matches('/');
    if subdir.is_empty() {
        return Ok(String::new());
    }
    if subdir.split('/').any(|s| matches!(s, "" | "." | "..")) || subdir.contains('\\') {
        return Err(format!("the subdirectory {subdir:?} must be a relative path without empty, \".\" or \"..\" segments"));
    }
    Ok(subdir.to_string())
}

/// Fetches `location` within `policy`, which must allow it; `url` is the URL as given.
pub async fn fetch(policy: &SourcePolicy, url: &str, location: &Location) -> FetchResult<Fetched> {
    policy.check_allowed(location.url())?;
    let work = async {
        match location {
            Location::Http { url: fetched, kind, subdir } => {
                let (bytes, sha256) = http::download(policy, fetched).await?;
                let name = fetched.rsplit('/').next().unwrap_or_default().to_string();
                let (kind, subdir, max) = (*kind, subdir.clone(), policy.max_bytes);
                let files = tokio::task::spawn_blocking(move || match kind {
                    FileKind::Terraform => archive::single(&name, bytes),
                    FileKind::Zip => archive::zip(&bytes, &subdir, max),
                    FileKind::TarGz => archive::tar_gz(&bytes, &subdir, max),
                })
                .await
                .map_err(|e| FetchError(format!("the archive could not be read: {e}")))??;
                Ok(Fetched { files, source: TemplateSource { url: url.to_string(), commit: None, sha256: Some(sha256) } })
            }
            Location::Git { repository, subdir, reference } => {
                let (files, commit) = git::fetch(policy, repository, subdir, reference.as_deref()).await?;
                Ok(Fetched { files, source: TemplateSource { url: url.to_string(), commit: Some(commit), sha256: None } })
            }
        }
    };
    tokio::time::timeout(policy.timeout, work)
        .await
        .map_err(|_| FetchError(format!("fetching {url} took more than {} seconds.", policy.timeout.as_secs())))?
}

/// Collects the files of a tree as they are listed, keeping those Terraform reads under
/// `subdir`, with the limits on count and size.
struct Collector<'a> {
    subdir: &'a str,
    files: BTreeMap<String, String>,
}

impl<'a> Collector<'a> {
    fn new(subdir: &'a str) -> Self {
        Collector { subdir, files: BTreeMap::new() }
    }

    /// The path relative to the subdirectory of an entry called `path` if it is to be taken.
    /// Refuses unsafe paths (absolute, `..`) wherever they are; `link` says the entry is a
    /// symbolic or hard link, refused when it would be taken (links are never followed).
    fn wanted(&self, path: &str, link: bool) -> FetchResult<Option<String>> {
        let path = path.trim_start_matches("./");
        if path.starts_with('/') || path.contains('\\') || path.split('/').any(|s| s == "..") {
            return Err(FetchError(format!("the archive holds the unsafe path {path:?} (absolute or with \"..\"); nothing was taken.")));
        }
        let relative = if self.subdir.is_empty() {
            path
        } else {
            match path.strip_prefix(self.subdir).and_then(|p| p.strip_prefix('/')) {
                Some(p) => p,
                None => return Ok(None),
            }
        };
        let name = relative.rsplit('/').next().unwrap_or_default();
        let terraform = name.ends_with(".tf") || name.ends_with(".tf.json");
        if !terraform || relative.split('/').any(|s| s.is_empty() || s.starts_with('.')) {
            return Ok(None);
        }
        if link {
            return Err(FetchError(format!("{path} is a link: links are not followed; make it a file.")));
        }
        if self.files.len() == MAX_FILES {
            return Err(FetchError(format!("the source holds more than {MAX_FILES} Terraform files.")));
        }
        Ok(Some(relative.to_string()))
    }

    /// Refuses a file at `relative` of `size` bytes, over the limit of one file.
    fn size_ok(relative: &str, size: u64) -> FetchResult<()> {
        if size > MAX_FILE_BYTES {
            return Err(FetchError(format!("the file {relative} is {size} bytes long; at most {MAX_FILE_BYTES} are allowed per file.")));
        }
        Ok(())
    }

    /// Takes the content of the file at `relative`.
    fn take(&mut self, relative: String, content: Vec<u8>) -> FetchResult<()> {
        Self::size_ok(&relative, content.len() as u64)?;
        let text = String::from_utf8(content).map_err(|_| FetchError(format!("the file {relative} is not UTF-8 text.")))?;
        self.files.insert(relative, text);
        Ok(())
    }

    /// The files taken; at least one.
    fn finish(self) -> FetchResult<BTreeMap<String, String>> {
        if self.files.is_empty() {
            let place = if self.subdir.is_empty() { "the top".to_string() } else { format!("the subdirectory {}", self.subdir) };
            return Err(FetchError(format!("the source holds no .tf or .tf.json file under {place}.")));
        }
        Ok(self.files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_parse_like_terraform_module_sources() {
        let parsed = parse("git::https://example.com/net.git//modules/vpc?ref=v1.2.0").unwrap();
        assert_eq!(
            parsed,
            Location::Git {
                repository: "https://example.com/net.git".into(),
                subdir: "modules/vpc".into(),
                reference: Some("v1.2.0".into())
            }
        );
        let local = parse("git::file:///srv/repo//tf/").unwrap();
        assert_eq!(local, Location::Git { repository: "file:///srv/repo".into(), subdir: "tf".into(), reference: None });
        let top = parse("git::file:///srv/repo?ref=main").unwrap();
        assert_eq!(top.url(), "file:///srv/repo");
        for bad in [
            "git::ssh://host/repo.git",
            "git::ext::sh -c x",
            "git::https://u:p@host/repo.git",
            "git::https://host/repo.git?ref=",
            "git::https://host/repo.git?ref=--upload-pack=x",
            "git::https://host/repo.git?depth=1",
            "git::https://host/repo.git//../x",
            "git::https://host/repo.git//a/./b",
            "git::file://host/repo",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_urls_name_what_they_hold() {
        let kind = |url: &str| match parse(url).unwrap() {
            Location::Http { kind, subdir, .. } => (kind, subdir),
            other => panic!("{other:?}"),
        };
        assert_eq!(kind("https://h/a/main.tf"), (FileKind::Terraform, String::new()));
        assert_eq!(kind("http://h:8080/x.tf.json?token=1"), (FileKind::Terraform, String::new()));
        assert_eq!(kind("https://h/t.zip//net"), (FileKind::Zip, "net".into()));
        assert_eq!(kind("https://h/t.tar.gz"), (FileKind::TarGz, String::new()));
        assert_eq!(kind("https://h/t.TGZ"), (FileKind::TarGz, String::new()));
        for bad in ["https://h/readme.md", "https://h/main.tf//sub", "https://user@h/t.zip", "ftp://h/t.zip", "https://h/t.zip#x"] {
            let err = parse(bad).unwrap_err().0;
            assert!(err.contains("not a template source URL"), "{bad}: {err}");
        }
        let err = parse("git::https://user:secret@h/r.git?ref=v1").unwrap_err().0;
        assert!(err.contains("\"git::https://h/r.git?ref=v1\"") && !err.contains("secret"), "{err}");
        assert_eq!(without_userinfo("https://h/a@b"), "https://h/a@b");
        assert!(is_source("HTTPS://h/x.tf") && is_source("git::file:///r") && !is_source("oss://bucket/x"));
    }

    #[test]
    fn the_collector_takes_terraform_files_under_the_subdirectory() {
        let mut c = Collector::new("tf");
        assert_eq!(c.wanted("tf/main.tf", false).unwrap().as_deref(), Some("main.tf"));
        assert_eq!(c.wanted("./tf/modules/net/x.tf.json", false).unwrap().as_deref(), Some("modules/net/x.tf.json"));
        for skipped in ["main.tf", "tf/README.md", "tf/.git/x.tf", "tf/.terraform/m/x.tf", "tfx/main.tf", "tf/.hidden.tf"] {
            assert_eq!(c.wanted(skipped, false).unwrap(), None, "{skipped}");
        }
        assert_eq!(c.wanted("tf/README.md", true).unwrap(), None);
        assert!(c.wanted("tf/link.tf", true).unwrap_err().0.contains("link"));
        for unsafe_path in ["../main.tf", "/etc/x.tf", "tf/../../x.tf", "other/../x"] {
            assert!(c.wanted(unsafe_path, false).unwrap_err().0.contains("unsafe path"), "{unsafe_path}");
        }
        assert!(c.take("a.tf".into(), vec![0xff]).unwrap_err().0.contains("UTF-8"));
        assert!(c.take("b.tf".into(), vec![b' '; MAX_FILE_BYTES as usize + 1]).unwrap_err().0.contains("bytes long"));
        assert!(Collector::new("x").finish().unwrap_err().0.contains("subdirectory x"));
        for i in 0..MAX_FILES {
            c.take(format!("f{i}.tf"), Vec::new()).unwrap();
        }
        assert!(c.wanted("tf/more.tf", false).unwrap_err().0.contains("more than 50"));
    }
}
