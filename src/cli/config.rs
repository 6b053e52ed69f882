//! Profiles: endpoints and AccessKeys in `~/.servicecatalog/config.json` (directory 0700, file
//! 0600; `SERVICECATALOG_CONFIG` relocates the file). A call takes its endpoint and key from the
//! command line, else the environment, else the profile; secrets are only ever shown masked.
//! `configure` makes a profile current only when there is none yet; `configure switch` changes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use super::Failure;
use crate::ops::data::ROOT_CREDENTIALS_FILE;

/// Endpoint used by `configure import-root` when none is known: `serve`'s default address.
const LOCAL_ENDPOINT: &str = "http://127.0.0.1:8080";
const DEFAULT_PROFILE: &str = "default";

/// The configuration file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ConfigFile {
    /// Profile used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// One profile of the configuration file.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_key_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_bundle: Option<PathBuf>,
}

/// The fields `configure` sets; absent ones are kept.
pub struct ProfileUpdate {
    /// New endpoint.
    pub endpoint: Option<String>,
    /// New AccessKey id.
    pub access_key_id: Option<String>,
    /// New AccessKey secret.
    pub access_key_secret: Option<String>,
    /// New CA bundle for HTTPS endpoints.
    pub ca_bundle: Option<PathBuf>,
}

/// Where and as whom a client command calls: its `--profile` and `--endpoint` options.
#[derive(Args, Debug, Clone, Default)]
pub struct Connection {
    /// Profile of the configuration file (default: $SERVICECATALOG_PROFILE, else the current one).
    #[arg(long)]
    pub profile: Option<String>,
    /// Endpoint, overriding $SERVICECATALOG_ENDPOINT and the profile's.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// PEM file of CA certificates trusted for an HTTPS endpoint besides the system's, overriding
    /// $SERVICECATALOG_CA_BUNDLE and the profile's.
    #[arg(long, value_name = "PATH")]
    pub ca_bundle: Option<PathBuf>,
}

/// Endpoint and AccessKey of a call, once options, environment and profile are combined.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Endpoint as configured (`host:port`, `http://host:port` or `https://host:port`).
    pub endpoint: String,
    /// AccessKey id.
    pub access_key_id: String,
    /// AccessKey secret.
    pub access_key_secret: String,
    /// CA certificates trusted besides the system's.
    pub ca_bundle: Option<PathBuf>,
}

impl Connection {
    /// Combines the options, the environment and the configuration file.
    pub fn resolve(&self) -> Result<Resolved, Failure> {
        self.resolve_with(&path()?, &|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    fn resolve_with(&self, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Resolved, Failure> {
        let file = load(path)?;
        let named = self.profile.clone().or_else(|| env("SERVICECATALOG_PROFILE"));
        let profile = match &named {
            Some(name) => file.profiles.get(name).cloned().ok_or_else(|| {
                Failure::Usage(format!(
                    "there is no profile {name:?} in {}; create it with `servicecatalog configure --profile {name} …`",
                    path.display()
                ))
            })?,
            None => file.profiles.get(file.current.as_deref().unwrap_or(DEFAULT_PROFILE)).cloned().unwrap_or_default(),
        };
        let missing = |what: &str, option: &str, variable: &str| {
            Failure::Usage(format!(
                "no {what} is configured: run `servicecatalog configure {option} …` (or `configure import-root`), or set {variable}"
            ))
        };
        Ok(Resolved {
            endpoint: self
                .endpoint
                .clone()
                .or_else(|| env("SERVICECATALOG_ENDPOINT"))
                .or(profile.endpoint)
                .ok_or_else(|| missing("endpoint", "--endpoint", "SERVICECATALOG_ENDPOINT"))?,
            access_key_id: env("SERVICECATALOG_ACCESS_KEY_ID")
                .or(profile.access_key_id)
                .ok_or_else(|| missing("AccessKey id", "--access-key-id", "SERVICECATALOG_ACCESS_KEY_ID"))?,
            access_key_secret: env("SERVICECATALOG_ACCESS_KEY_SECRET")
                .or(profile.access_key_secret)
                .ok_or_else(|| missing("AccessKey secret", "--access-key-secret", "SERVICECATALOG_ACCESS_KEY_SECRET"))?,
            ca_bundle: self.ca_bundle.clone().or_else(|| env("SERVICECATALOG_CA_BUNDLE").map(PathBuf::from)).or(profile.ca_bundle),
        })
    }
}

/// The configuration file: `$SERVICECATALOG_CONFIG`, else `~/.servicecatalog/config.json`.
pub fn path() -> Result<PathBuf, Failure> {
    if let Some(path) = std::env::var_os("SERVICECATALOG_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Failure::Usage("HOME is not set: set SERVICECATALOG_CONFIG to the configuration file".into()))?;
    Ok(PathBuf::from(home).join(".servicecatalog").join("config.json"))
}

fn load(path: &Path) -> Result<ConfigFile, Failure> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| Failure::Usage(format!("{} is not a valid configuration file: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(Failure::Usage(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Writes the file 0600, creating its directory 0700 when missing.
fn save(path: &Path, file: &ConfigFile) -> Result<(), Failure> {
    use std::os::unix::fs::DirBuilderExt;
    let failed = |e: std::io::Error| Failure::Usage(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(failed)?;
    }
    let json = serde_json::to_string_pretty(file).expect("the configuration serialises");
    crate::fs::write_private(path, format!("{json}\n").as_bytes()).map_err(failed)
}

/// `****` and the last four characters; secrets shorter than eight characters are fully masked.
pub fn mask(secret: &str) -> String {
    let count = secret.chars().count();
    if count < 8 {
        return "****".into();
    }
    format!("****{}", secret.chars().skip(count - 4).collect::<String>())
}

/// `configure`: applies `update` to the profile (default: the current one), which becomes current
/// only when no profile is; with nothing to update, shows the profile. Returns the text to print.
pub fn configure(path: &Path, profile: Option<String>, update: ProfileUpdate) -> Result<String, Failure> {
    let mut file = load(path)?;
    let name = profile.or_else(|| file.current.clone()).unwrap_or_else(|| DEFAULT_PROFILE.into());
    let ProfileUpdate { endpoint, access_key_id, access_key_secret, ca_bundle } = update;
    if endpoint.is_none() && access_key_id.is_none() && access_key_secret.is_none() && ca_bundle.is_none() {
        let shown = file.profiles.get(&name).ok_or_else(|| {
            Failure::Usage(format!("there is no profile {name:?} in {}; set one with `servicecatalog configure --endpoint E --access-key-id ID --access-key-secret S`", path.display()))
        })?;
        return Ok(describe(path, &name, shown, file.current.as_deref() == Some(name.as_str())));
    }
    if let Some(endpoint) = &endpoint {
        super::client::Endpoint::parse(endpoint)?;
    }
    let entry = file.profiles.entry(name.clone()).or_default();
    entry.endpoint = endpoint.or(entry.endpoint.take());
    entry.access_key_id = access_key_id.or(entry.access_key_id.take());
    entry.access_key_secret = access_key_secret.or(entry.access_key_secret.take());
    entry.ca_bundle = ca_bundle.or(entry.ca_bundle.take());
    let shown = entry.clone();
    let note = match file.current.as_deref() {
        None => {
            file.current = Some(name.clone());
            format!("{name} is now the current profile.")
        }
        Some(current) if current == name => String::new(),
        Some(current) => {
            format!("The current profile is still {current}; `servicecatalog configure switch {name}` makes {name} current.")
        }
    };
    save(path, &file)?;
    let text = describe(path, &name, &shown, file.current.as_deref() == Some(name.as_str()));
    Ok(if note.is_empty() { text } else { format!("{text}\n{note}") })
}

/// `configure switch`: makes an existing profile the current one.
pub fn switch(path: &Path, name: &str) -> Result<String, Failure> {
    let mut file = load(path)?;
    if !file.profiles.contains_key(name) {
        let names: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
        return Err(Failure::Usage(format!("there is no profile {name:?} in {}; the profiles are: {}", path.display(), names.join(", "))));
    }
    file.current = Some(name.to_string());
    save(path, &file)?;
    Ok(format!("{name} is now the current profile."))
}

/// The names of the profiles, for completion.
pub fn profile_names(path: &Path) -> Result<Vec<String>, Failure> {
    Ok(load(path)?.profiles.into_keys().collect())
}

/// `configure import-root`: stores the administrator key a local server wrote into its data
/// directory, with that server's endpoint, in a profile (current when none is).
pub fn import_root(path: &Path, data_dir: &Path, endpoint: Option<String>, profile: Option<String>) -> Result<String, Failure> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct RootCredentials {
        access_key_id: String,
        access_key_secret: String,
    }
    let source = data_dir.join(ROOT_CREDENTIALS_FILE);
    let bytes = std::fs::read(&source).map_err(|e| {
        Failure::Usage(format!(
            "cannot read {}: {e} (the server writes it at its first start, unless the administrator key comes from SERVICECATALOG_ROOT_ACCESS_KEY_ID; pass --data-dir)",
            source.display()
        ))
    })?;
    let root: RootCredentials =
        serde_json::from_slice(&bytes).map_err(|e| Failure::Usage(format!("{} is not valid: {e}", source.display())))?;
    let name = profile.unwrap_or_else(|| DEFAULT_PROFILE.into());
    let existing = load(path)?.profiles.get(&name).and_then(|p| p.endpoint.clone());
    let endpoint = endpoint.or(existing).unwrap_or_else(|| LOCAL_ENDPOINT.into());
    let update = ProfileUpdate {
        endpoint: Some(endpoint),
        access_key_id: Some(root.access_key_id),
        access_key_secret: Some(root.access_key_secret),
        ca_bundle: None,
    };
    let text = configure(path, Some(name), update)?;
    Ok(format!("Imported the administrator key from {}\n{text}", source.display()))
}

/// `configure list`: one line per profile, the current one starred.
pub fn list(path: &Path) -> Result<String, Failure> {
    let file = load(path)?;
    if file.profiles.is_empty() {
        return Ok(format!("No profiles in {}", path.display()));
    }
    let rows: Vec<Vec<String>> = file
        .profiles
        .iter()
        .map(|(name, p)| {
            let current = if file.current.as_deref() == Some(name.as_str()) { "*" } else { "" };
            vec![
                current.to_string(),
                name.clone(),
                p.endpoint.clone().unwrap_or_default(),
                p.access_key_id.clone().unwrap_or_default(),
                p.access_key_secret.as_deref().map(mask).unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["", "Profile", "Endpoint", "AccessKeyId", "AccessKeySecret"].map(String::from).to_vec();
    Ok(super::output::table(&header, &rows))
}

fn describe(path: &Path, name: &str, profile: &Profile, current: bool) -> String {
    let unset = || "(not set)".to_string();
    let ca_bundle = profile.ca_bundle.as_ref().map(|p| format!("\nCA bundle:       {}", p.display())).unwrap_or_default();
    format!(
        "Profile:         {name}{}\nEndpoint:        {}\nAccessKeyId:     {}\nAccessKeySecret: {}{ca_bundle}\nConfiguration:   {}",
        if current { " (current)" } else { "" },
        profile.endpoint.clone().unwrap_or_else(unset),
        profile.access_key_id.clone().unwrap_or_else(unset),
        profile.access_key_secret.as_deref().map_or_else(unset, mask),
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn update(endpoint: Option<&str>, id: Option<&str>, secret: Option<&str>) -> ProfileUpdate {
        ProfileUpdate {
            endpoint: endpoint.map(String::from),
            access_key_id: id.map(String::from),
            access_key_secret: secret.map(String::from),
            ca_bundle: None,
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_file_is_private_and_the_secret_masked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("config.json");
        let text = configure(&path, None, update(Some("127.0.0.1:9000"), Some("LTAIabc"), Some("secret-value-1234"))).unwrap();
        assert!(text.contains("****1234") && !text.contains("secret-value"), "{text}");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        configure(&path, None, update(None, Some("LTAIdef"), None)).unwrap();
        assert_eq!(mode(&path), 0o600);
        let listed = list(&path).unwrap();
        assert!(listed.contains("LTAIdef") && listed.contains("127.0.0.1:9000") && !listed.contains("secret-value"), "{listed}");
    }

    #[test]
    fn short_secrets_are_fully_masked() {
        assert_eq!(mask("abc"), "****");
        assert_eq!(mask("abcdefgh"), "****efgh");
    }

    #[test]
    fn options_beat_the_environment_which_beats_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        configure(&path, Some("a".into()), update(Some("file:1"), Some("file-id"), Some("file-secret"))).unwrap();
        configure(&path, Some("b".into()), update(Some("b:2"), Some("b-id"), Some("b-secret"))).unwrap();
        let no_env = |_: &str| None;
        let current = Connection::default().resolve_with(&path, &no_env).unwrap();
        assert_eq!((current.endpoint.as_str(), current.access_key_id.as_str()), ("file:1", "file-id"));
        let env = |name: &str| match name {
            "SERVICECATALOG_PROFILE" => Some("a".to_string()),
            "SERVICECATALOG_ENDPOINT" => Some("env:3".to_string()),
            _ => None,
        };
        let resolved = Connection::default().resolve_with(&path, &env).unwrap();
        assert_eq!((resolved.endpoint.as_str(), resolved.access_key_secret.as_str()), ("env:3", "file-secret"));
        let flags = Connection { profile: Some("b".into()), endpoint: Some("flag:4".into()), ca_bundle: None };
        let resolved = flags.resolve_with(&path, &env).unwrap();
        assert_eq!((resolved.endpoint.as_str(), resolved.access_key_id.as_str()), ("flag:4", "b-id"));
        let unknown = Connection { profile: Some("zz".into()), ..Connection::default() };
        assert!(matches!(unknown.resolve_with(&path, &no_env), Err(Failure::Usage(_))));
    }

    #[test]
    fn only_the_first_profile_becomes_current_and_switch_changes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let first = configure(&path, Some("alice".into()), update(Some("a:1"), Some("a"), Some("a-secret"))).unwrap();
        assert!(first.contains("alice (current)") && first.ends_with("alice is now the current profile."), "{first}");
        let second = configure(&path, Some("bob".into()), update(Some("b:2"), Some("b"), Some("b-secret"))).unwrap();
        assert!(!second.contains("(current)") && second.contains("still alice; `servicecatalog configure switch bob`"), "{second}");
        assert_eq!(load(&path).unwrap().current.as_deref(), Some("alice"));
        assert_eq!(switch(&path, "bob").unwrap(), "bob is now the current profile.");
        assert_eq!(load(&path).unwrap().current.as_deref(), Some("bob"));
        assert!(matches!(switch(&path, "carol"), Err(Failure::Usage(m)) if m.contains("alice, bob")));
        assert_eq!(profile_names(&path).unwrap(), ["alice", "bob"]);
    }

    #[test]
    fn import_root_reads_the_servers_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join(ROOT_CREDENTIALS_FILE), r#"{"AccessKeyId":"LTAIroot","AccessKeySecret":"root-secret-9876"}"#).unwrap();
        let path = dir.path().join("config.json");
        let text = import_root(&path, &data, None, None).unwrap();
        assert!(text.contains("LTAIroot") && text.contains("****9876") && !text.contains("root-secret"), "{text}");
        let resolved = Connection::default().resolve_with(&path, &|_| None).unwrap();
        assert_eq!(resolved.endpoint, LOCAL_ENDPOINT);
        assert_eq!(resolved.access_key_secret, "root-secret-9876");
        assert!(matches!(import_root(&path, dir.path(), None, None), Err(Failure::Usage(_))));
    }
}
