//! Where the data lives and how it is opened: the data directory (0700), the database URL, the
//! master key and its check (a rotation interrupted between its commit and the key file's
//! replacement is finished at the next start), and `master-key rotate`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::auth::secrets::SecretBox;
use crate::store::Store;

/// Where the data lives; shared by `serve` and the `users` commands.
#[derive(Debug, Clone)]
pub struct DataOptions {
    /// Data directory (SQLite database, master key, root credentials).
    pub data_dir: PathBuf,
    /// Database URL; the SQLite file in the data directory when absent.
    pub database: Option<String>,
    /// Master key (64 hex digits) instead of the key file in the data directory.
    pub master_key: Option<String>,
}

impl DataOptions {
    /// Creates the data directory (0700) and opens the store and the secret box, refusing a
    /// master key other than the one the database's secrets were sealed with.
    pub async fn open(&self) -> anyhow::Result<(Store, SecretBox)> {
        create_private_dir(&self.data_dir)?;
        let url = self.database.clone().unwrap_or_else(|| Store::sqlite_url(&self.data_dir));
        let store = Store::open(&url).await.with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
        let mut secrets = SecretBox::load_or_create(&self.data_dir, self.master_key.as_deref())?;
        let check = store.setting_or_insert("master_key_check", || secrets.seal(MASTER_KEY_CHECK)).await?;
        if secrets.open(&check).as_deref() != Some(MASTER_KEY_CHECK) && self.master_key.is_none() {
            // A rotation that stopped between its commit and replacing the key file left the
            // new key beside the old one.
            if let Some(next) = adopt_next_key(&self.data_dir, &check)? {
                secrets = next;
            }
        }
        if secrets.open(&check).as_deref() != Some(MASTER_KEY_CHECK) {
            anyhow::bail!(
                "the master key of {} is not the one this database's secrets were sealed with: every node of one \
                 database needs the same key (set SERVICECATALOG_MASTER_KEY, or copy master.key)",
                self.data_dir.display()
            );
        }
        Ok((store, secrets))
    }
}

/// Name of the file holding a generated administrator key.
pub const ROOT_CREDENTIALS_FILE: &str = "root-credentials.json";

/// Plain text sealed once per database to check the master key at start.
const MASTER_KEY_CHECK: &str = "servicecatalog master key check";

/// Where `master-key rotate` writes the new key file before the database changes.
fn next_key_file(data_dir: &Path) -> PathBuf {
    SecretBox::key_file(data_dir).with_extension("key.next")
}

/// The key of `master.key.next` when it opens `check` (a rotation committed but did not replace
/// the key file): it becomes `master.key`.
fn adopt_next_key(data_dir: &Path, check: &str) -> anyhow::Result<Option<SecretBox>> {
    let next_file = next_key_file(data_dir);
    let Ok(text) = std::fs::read_to_string(&next_file) else { return Ok(None) };
    let next = SecretBox::from_hex(&text)?;
    if next.open(check).as_deref() != Some(MASTER_KEY_CHECK) {
        return Ok(None);
    }
    std::fs::rename(&next_file, SecretBox::key_file(data_dir))
        .with_context(|| format!("cannot replace the master key with {}", next_file.display()))?;
    tracing::warn!("a master key rotation had not replaced the key file: the new key is now in use");
    Ok(Some(next))
}

/// `master-key rotate`: seals every secret of the database under a new master key, in one
/// transaction, with every node stopped (a running node keeps the old key and could not open what
/// is sealed under the new one). The new key is `new_key` (64 hex digits) or a random one. With the
/// key in the data directory, it is written beside the old one first (`master.key.next`), the
/// database changes, then it replaces `master.key`: a stop at any point leaves a key file that
/// opens the database (start-up adopts `master.key.next` when it is the one). With
/// `SERVICECATALOG_MASTER_KEY`, the new key is printed for the operator to set on every node.
pub async fn rotate_master_key(data: &DataOptions, new_key: Option<&str>) -> anyhow::Result<()> {
    let (store, old) = data.open().await?;
    let hex = match new_key {
        Some(hex) => hex.trim().to_string(),
        None => SecretBox::generate_hex(),
    };
    let new = SecretBox::from_hex(&hex)?;
    let next_file = next_key_file(&data.data_dir);
    if data.master_key.is_none() {
        crate::fs::write_private(&next_file, hex.as_bytes()).with_context(|| format!("cannot write {}", next_file.display()))?;
    }
    let changed = store.reseal_all(|sealed| old.open(sealed).map(|plain| new.seal(&plain))).await?;
    if data.master_key.is_none() {
        let key_file = SecretBox::key_file(&data.data_dir);
        std::fs::rename(&next_file, &key_file).with_context(|| format!("cannot replace {}", key_file.display()))?;
        println!("re-sealed {changed} secrets; the new master key is in {}", key_file.display());
    } else {
        println!("re-sealed {changed} secrets; set SERVICECATALOG_MASTER_KEY on every node to the new key:");
        println!("{hex}");
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    Ok(())
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_database_urls() {
        assert_eq!(super::redact_url("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(super::redact_url("sqlite:///x/y.db"), "sqlite:///x/y.db");
    }
}
