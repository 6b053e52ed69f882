//! The operator's choices about outside template sources: which URL prefixes may be fetched
//! (none by default: a server that fetches any URL it is given can be made to reach internal
//! services), the credentials sent to some of them, and the limits of one fetch.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use super::{FetchError, FetchResult};

/// The flags of `serve` that set the policy.
#[derive(clap::Args, Debug, Clone)]
pub struct SourceArgs {
    /// URL prefixes templates may be fetched from, comma-separated (e.g.
    /// https://git.example.com/,file:///srv/templates/); `*` allows every URL. Default: none,
    /// fetching is disabled and only templates uploaded with CreateTemplate are accepted.
    #[arg(long, env = "SERVICECATALOG_TEMPLATE_SOURCES", value_delimiter = ',')]
    pub template_sources: Vec<String>,
    /// TOML file of credentials sent to template sources by URL prefix ([[credential]] tables
    /// with prefix and authorization, authorization_env, or username with password or
    /// password_env).
    #[arg(long, env = "SERVICECATALOG_TEMPLATE_SOURCE_CREDENTIALS", value_name = "FILE")]
    pub template_source_credentials: Option<PathBuf>,
    /// Largest download, and largest total of an archive's unpacked entries, in bytes.
    #[arg(long, env = "SERVICECATALOG_TEMPLATE_SOURCE_MAX_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub template_source_max_bytes: u64,
    /// Time limit of one fetch, in seconds.
    #[arg(long, env = "SERVICECATALOG_TEMPLATE_SOURCE_TIMEOUT", default_value_t = 60)]
    pub template_source_timeout: u64,
    /// The Transform of templates built from fetched files (which names the Terraform version
    /// that runs them); default: that of templates pasted in the console (Terraform 1.0 where
    /// this node runs it, else the newest version it runs).
    #[arg(long, env = "SERVICECATALOG_TEMPLATE_SOURCE_TRANSFORM")]
    pub template_source_transform: Option<String>,
}

impl SourceArgs {
    /// The policy these flags set, reading the credentials file and the variables it names.
    pub fn policy(&self) -> anyhow::Result<SourcePolicy> {
        let credentials = match &self.template_source_credentials {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                credentials(&text, |name| std::env::var(name).ok())
                    .with_context(|| format!("invalid credentials file {}", path.display()))?
            }
            None => Vec::new(),
        };
        Ok(SourcePolicy {
            allow: self.template_sources.iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
            credentials,
            max_bytes: self.template_source_max_bytes.max(1),
            timeout: Duration::from_secs(self.template_source_timeout.max(1)),
            transform: self.template_source_transform.clone(),
        })
    }
}

/// Which template sources may be fetched, how, and within which limits.
#[derive(Debug, Clone)]
pub struct SourcePolicy {
    /// URL prefixes allowed (`*`: all); empty: fetching is disabled.
    pub allow: Vec<String>,
    /// Credentials by URL prefix; the longest matching prefix is used.
    pub credentials: Vec<Credential>,
    /// Largest download and largest unpacked archive, in bytes.
    pub max_bytes: u64,
    /// Time limit of one fetch.
    pub timeout: Duration,
    /// `Transform` of templates built from fetched files; `None`: the catalog's default.
    pub transform: Option<String>,
}

impl Default for SourcePolicy {
    /// Fetching disabled.
    fn default() -> Self {
        SourcePolicy {
            allow: Vec::new(),
            credentials: Vec::new(),
            max_bytes: 16 * 1024 * 1024,
            timeout: Duration::from_secs(60),
            transform: None,
        }
    }
}

/// The `Authorization` header sent to URLs under `prefix`.
#[derive(Clone)]
pub struct Credential {
    /// URL prefix (matched like the allow-list).
    pub prefix: String,
    /// The header's value, e.g. `Bearer …` or `Basic …`.
    pub authorization: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("prefix", &self.prefix).field("authorization", &"<redacted>").finish()
    }
}

/// Whether `url` is under `prefix`: it starts with it, and the prefix ends at a boundary of the
/// URL (a `/`, or the end of the host followed by `/`, `:` or `?`), so that `https://git.example.com`
/// does not allow `https://git.example.com.attacker.net/` nor `https://git.example.com@attacker.net/`.
pub fn under(url: &str, prefix: &str) -> bool {
    if prefix == "*" {
        return true;
    }
    let Some(rest) = url.get(..prefix.len()).filter(|head| head.eq_ignore_ascii_case(prefix)).map(|_| &url[prefix.len()..]) else {
        return false;
    };
    prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', ':', '?'])
}

impl SourcePolicy {
    /// Refuses every URL when fetching is disabled.
    pub fn check_enabled(&self) -> FetchResult<()> {
        if self.allow.is_empty() {
            return Err(FetchError(
                "this server does not fetch templates from URLs (the operator enables it with --template-sources); upload the \
                 template with CreateTemplate and pass the TemplateUrl it returns."
                    .into(),
            ));
        }
        Ok(())
    }

    /// Refuses a URL no allowed prefix covers.
    pub fn check_allowed(&self, url: &str) -> FetchResult<()> {
        self.check_enabled()?;
        if !self.allow.iter().any(|prefix| under(url, prefix)) {
            return Err(FetchError(format!(
                "the URL {url} is not under a prefix this server may fetch templates from (--template-sources)."
            )));
        }
        Ok(())
    }

    /// The `Authorization` value for `url`, from the longest matching credential prefix.
    pub fn authorization(&self, url: &str) -> Option<&str> {
        self.credentials
            .iter()
            .filter(|c| c.prefix != "*" && under(url, &c.prefix))
            .max_by_key(|c| c.prefix.len())
            .map(|c| c.authorization.as_str())
    }
}

/// One `[[credential]]` table of the credentials file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialEntry {
    prefix: String,
    authorization: Option<String>,
    authorization_env: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    credential: Vec<CredentialEntry>,
}

/// Parses a credentials file; `env` reads the variables it names.
fn credentials(text: &str, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Vec<Credential>> {
    use base64::Engine as _;
    let file: CredentialsFile = toml::from_str(text)?;
    let variable = |name: &str| env(name).filter(|v| !v.is_empty()).with_context(|| format!("the variable {name} is not set"));
    file.credential
        .into_iter()
        .map(|entry| {
            let authorization = match (entry.authorization, entry.authorization_env, entry.username) {
                (Some(value), None, None) => value,
                (None, Some(name), None) => variable(&name)?,
                (None, None, Some(user)) => {
                    let password = match (entry.password, entry.password_env) {
                        (Some(p), None) => p,
                        (None, Some(name)) => variable(&name)?,
                        _ => anyhow::bail!("the credential of {} needs one of password and password_env", entry.prefix),
                    };
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
                }
                _ => anyhow::bail!("the credential of {} needs one of authorization, authorization_env and username", entry.prefix),
            };
            if entry.prefix.is_empty() || entry.prefix == "*" {
                anyhow::bail!("a credential needs a URL prefix (not {:?})", entry.prefix);
            }
            Ok(Credential { prefix: entry.prefix, authorization })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> SourcePolicy {
        SourcePolicy { allow: allow.iter().map(|s| s.to_string()).collect(), ..SourcePolicy::default() }
    }

    #[test]
    fn prefixes_end_at_a_url_boundary() {
        let p = policy(&["https://git.example.com", "file:///srv/templates/"]);
        for allowed in
            ["https://git.example.com/a.git", "https://git.example.com:8443/x.zip", "file:///srv/templates/r", "HTTPS://GIT.example.com/a"]
        {
            assert!(p.check_allowed(allowed).is_ok(), "{allowed}");
        }
        for refused in [
            "https://git.example.com.attacker.net/a.git",
            "https://git.example.com@attacker.net/a",
            "http://git.example.com/a.git",
            "file:///srv/templates-other/r",
            "file:///etc/",
        ] {
            assert!(p.check_allowed(refused).unwrap_err().0.contains("not under a prefix"), "{refused}");
        }
        assert!(policy(&[]).check_allowed("https://x/a.tf").unwrap_err().0.contains("does not fetch"));
        assert!(policy(&["*"]).check_allowed("http://10.0.0.1/a.tf").is_ok());
    }

    #[test]
    fn credentials_come_from_the_file_or_the_environment() {
        let text = r#"
[[credential]]
prefix = "https://a.example.com/"
authorization = "Bearer literal"

[[credential]]
prefix = "https://a.example.com/team/"
authorization_env = "TOKEN"

[[credential]]
prefix = "https://b.example.com"
username = "ci"
password_env = "PASSWORD"
"#;
        let env = |name: &str| match name {
            "TOKEN" => Some("Bearer from-env".to_string()),
            "PASSWORD" => Some("pw".to_string()),
            _ => None,
        };
        let p = SourcePolicy { credentials: credentials(text, env).unwrap(), ..policy(&["*"]) };
        assert_eq!(p.authorization("https://a.example.com/x.zip"), Some("Bearer literal"));
        assert_eq!(p.authorization("https://a.example.com/team/x.zip"), Some("Bearer from-env"));
        assert_eq!(p.authorization("https://b.example.com/r.git"), Some("Basic Y2k6cHc="));
        assert_eq!(p.authorization("https://b.example.com.evil/r.git"), None);
        assert!(!format!("{:?}", p.credentials).contains("literal"));
        assert!(credentials("[[credential]]\nprefix = \"x\"\nauthorization_env = \"NONE\"\n", env).is_err());
        assert!(credentials("[[credential]]\nprefix = \"x\"\n", env).is_err());
        assert!(credentials("[[credential]]\nprefix = \"x\"\nauthorization = \"a\"\nextra = 1\n", env).is_err());
    }
}
