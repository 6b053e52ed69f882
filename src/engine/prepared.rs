//! `terraform init` done once and reused. Jobs of one product version initialise the same
//! thing: the same Workspace files, Terraform binary, provider mirror and launch role variables
//! (what the [`InitKey`] digests). The first job with a key runs `init` for real in its own
//! directory; a copy of what init made there (`.terraform/` and `.terraform.lock.hcl`) is then
//! kept under `DATA_DIR/init/<key>/`. Later jobs with the key lay out their `.terraform/` from it
//! (its small files copied, its directories — provider packages, modules — linked and mounted
//! read-only in the sandbox) and do not start `init`.
//!
//! Safe under concurrency within the node: each key has a read-write lock; a job reusing a
//! prepared directory holds it shared until the job ends, a job building one holds it exclusively
//! (jobs of the same key wait for its `init` rather than repeat it). Terraform's own plugin cache
//! is not used: concurrent inits corrupt it. A prepared directory is built as `<key>.partial`
//! and renamed into place complete, its manifest (every entry's kind, size and link target)
//! inside: a crash halfway leaves nothing trusted, and a directory that no longer matches its
//! manifest is removed and built again. Directories unused for [`UNUSED_FOR`] are removed.
//!
//! The building job's copy is taken right after `init`, before any plan runs a provider in that
//! directory: a job's own run cannot alter what later jobs reuse.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// The dependency lock file Terraform reads and `init` writes.
const LOCK_FILE: &str = ".terraform.lock.hcl";
/// Terraform's data directory in a working directory.
const DATA_DIR: &str = ".terraform";
/// The manifest of a prepared directory, written last.
const MANIFEST: &str = "prepared.json";
/// A prepared directory not reused for this long is removed (a later job builds it again).
pub const UNUSED_FOR: Duration = Duration::from_secs(14 * 86_400);

/// What the work of `init` depends on, digested: two jobs with the same key get the same result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InitKey(String);

impl InitKey {
    /// The key of an `init` of `workspace` by `binary` (its identity: path, size, modification
    /// time), with the provider mirror whose bundled package has checksum `mirror` and the
    /// launch role's variables `launch_env` (they may hold what init uses: registry tokens,
    /// module credentials).
    pub fn new(binary: &str, mirror: Option<&str>, workspace: &BTreeMap<String, String>, launch_env: &[(String, String)]) -> Self {
        let mut hash = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        field(b"servicecatalog init 1");
        field(binary.as_bytes());
        field(mirror.unwrap_or_default().as_bytes());
        for (path, content) in workspace {
            field(path.as_bytes());
            field(content.as_bytes());
        }
        let mut env: Vec<_> = launch_env.iter().collect();
        env.sort();
        for (name, value) in env {
            field(name.as_bytes());
            field(value.as_bytes());
        }
        InitKey(hex::encode(hash.finalize()))
    }

    /// The short form shown in logs (the directory's name starts with it).
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

/// The prepared inits of one node, under `DATA_DIR/init`.
pub struct PreparedInits {
    root: PathBuf,
    locks: Mutex<HashMap<InitKey, Arc<RwLock<()>>>>,
}

/// How a job's `init` is done.
pub enum Init {
    /// From a prepared directory: `init` does not run.
    Reuse(Reuse),
    /// This job runs `init`, then [`Build::publish`]es what it made.
    Build(Build),
}

/// A valid prepared directory, held (shared) while the job that reuses it runs.
pub struct Reuse {
    dir: PathBuf,
    key: InitKey,
    manifest: Manifest,
    _held: OwnedRwLockReadGuard<()>,
}

/// The right to build the prepared directory of a key (held exclusively until published).
pub struct Build {
    root: PathBuf,
    key: InitKey,
    _held: OwnedRwLockWriteGuard<()>,
}

/// What a prepared directory holds, and where it came from.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    /// The job whose `init` made it.
    prepared_by: String,
    /// When (RFC 3339, UTC).
    prepared_at: String,
    /// The Terraform binary, and its version when known.
    binary: String,
    terraform: Option<String>,
    /// The providers of the lock file: (source address, version).
    providers: Vec<(String, String)>,
    /// Every entry but the manifest, in walking order.
    entries: Vec<Entry>,
}

/// One entry of a prepared directory.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    path: String,
    kind: Kind,
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Dir,
    File { size: u64 },
    Link { target: PathBuf },
}

impl PreparedInits {
    /// The prepared inits below `data_dir`; removes what a crash or disuse left.
    pub fn new(data_dir: &Path) -> Self {
        let inits = PreparedInits { root: data_dir.join("init"), locks: Mutex::new(HashMap::new()) };
        inits.sweep();
        inits
    }

    fn lock_of(&self, key: &InitKey) -> Arc<RwLock<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        Arc::clone(locks.entry(key.clone()).or_default())
    }

    fn dir_of(&self, key: &InitKey) -> PathBuf {
        self.root.join(&key.0)
    }

    /// How a job with `key` does its `init`: reuses the prepared directory when it is whole, else
    /// builds it (after the job building it now, if any, is done).
    pub async fn claim(&self, key: InitKey) -> Init {
        let lock = self.lock_of(&key);
        let dir = self.dir_of(&key);
        let shared = Arc::clone(&lock).read_owned().await;
        if let Some(manifest) = check(&dir) {
            return Init::Reuse(Reuse { dir, key, manifest, _held: shared });
        }
        drop(shared);
        let exclusive = lock.write_owned().await;
        if let Some(manifest) = check(&dir) {
            return Init::Reuse(Reuse { dir, key, manifest, _held: exclusive.downgrade() });
        }
        if dir.exists() {
            tracing::warn!(dir = %dir.display(), "a prepared init does not match its manifest: building it again");
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(error = %e, "cannot remove a broken prepared init");
            }
        }
        Init::Build(Build { root: self.root.clone(), key, _held: exclusive })
    }

    /// Removes leftover partial builds and prepared directories unused for [`UNUSED_FOR`], each
    /// only when no job holds it.
    pub fn sweep(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (key, partial) = match name.strip_suffix(".partial") {
                Some(key) => (key.to_string(), true),
                None => (name, false),
            };
            let unused = || {
                let used = std::fs::metadata(entry.path().join(MANIFEST)).and_then(|m| m.modified());
                used.map_or(true, |used| SystemTime::now().duration_since(used).is_ok_and(|age| age > UNUSED_FOR))
            };
            if partial || unused() {
                let lock = self.lock_of(&InitKey(key));
                if let Ok(_held) = lock.try_write_owned() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}

impl Reuse {
    /// The prepared directory (mounted read-only in the job's sandbox).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lays out `.terraform/` and the lock file in the working directory `work`: files copied,
    /// directories linked to the prepared ones. Marks the prepared directory used.
    pub fn lay_out(&self, work: &Path) -> io::Result<()> {
        let data = self.dir.join(DATA_DIR);
        std::fs::create_dir(work.join(DATA_DIR))?;
        for entry in std::fs::read_dir(&data)? {
            let entry = entry?;
            let (from, to) = (entry.path(), work.join(DATA_DIR).join(entry.file_name()));
            let kind = entry.file_type()?;
            if kind.is_dir() {
                std::os::unix::fs::symlink(&from, &to)?;
            } else if kind.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            } else {
                std::fs::write(&to, std::fs::read(&from)?)?;
            }
        }
        let lock = self.dir.join(LOCK_FILE);
        if lock.exists() {
            std::fs::write(work.join(LOCK_FILE), std::fs::read(lock)?)?;
        }
        // Its modification time says when it was last used (see `sweep`).
        std::fs::File::options().write(true).open(self.dir.join(MANIFEST))?.set_modified(SystemTime::now())
    }

    /// The `init` entry of the job's log: that init did not run, and what it reuses.
    pub fn note(&self) -> String {
        let m = &self.manifest;
        let terraform = m.terraform.as_deref().map(|v| format!(", {v}")).unwrap_or_default();
        let mut note = format!(
            "servicecatalog: terraform init did not run. This job reuses what it made for an earlier job with the same \
             Workspace files, launch role variables and Terraform binary ({}{terraform}) at {} (prepared init {}).\n",
            m.binary,
            m.prepared_at,
            self.key.short()
        );
        if m.providers.is_empty() {
            note.push_str("No providers.\n");
        } else {
            note.push_str("Providers, from the dependency lock file:\n");
            for (source, version) in &m.providers {
                note.push_str(&format!("- {source} v{version}\n"));
            }
        }
        note
    }
}

impl Build {
    /// Keeps a copy of what `init` made in the working directory `work` (job `job_id`, binary
    /// `binary` of version `terraform`) for later jobs: built aside, renamed into place whole.
    /// Returns the note for the job's `init` log.
    pub fn publish(self, work: &Path, job_id: &str, binary: &str, terraform: Option<&str>) -> io::Result<String> {
        let (dir, partial) = (self.root.join(&self.key.0), self.root.join(format!("{}.partial", self.key.0)));
        if partial.exists() {
            std::fs::remove_dir_all(&partial)?;
        }
        std::fs::create_dir_all(&partial)?;
        let built = (|| {
            copy_tree(&work.join(DATA_DIR), &partial.join(DATA_DIR))?;
            let lock = work.join(LOCK_FILE);
            let providers = match std::fs::symlink_metadata(&lock) {
                Ok(meta) if meta.is_file() => {
                    let text = std::fs::read_to_string(&lock)?;
                    std::fs::write(partial.join(LOCK_FILE), &text)?;
                    locked_providers(&text)
                }
                _ => Vec::new(),
            };
            let manifest = Manifest {
                prepared_by: job_id.to_string(),
                prepared_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                binary: binary.to_string(),
                terraform: terraform.map(str::to_string),
                providers,
                entries: walk(&partial)?,
            };
            std::fs::write(partial.join(MANIFEST), serde_json::to_vec_pretty(&manifest)?)?;
            std::fs::rename(&partial, &dir)
        })();
        if built.is_err() {
            let _ = std::fs::remove_dir_all(&partial);
        }
        built?;
        Ok(format!(
            "servicecatalog: kept what init made (prepared init {}) for later jobs with the same Workspace files, launch role \
             variables and Terraform binary.\n",
            self.key.short()
        ))
    }
}

/// The manifest of the prepared directory `dir` when the directory matches it.
fn check(dir: &Path) -> Option<Manifest> {
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).ok()?).ok()?;
    let whole = walk(dir).ok()? == manifest.entries
        && manifest.entries.iter().all(|e| !matches!(e.kind, Kind::Link { .. }) || std::fs::metadata(dir.join(&e.path)).is_ok());
    whole.then_some(manifest)
}

/// Every entry below `root` (but the manifest), sorted by path; links are not followed.
fn walk(root: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in std::fs::read_dir(root.join(&relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            if path == Path::new(MANIFEST) {
                continue;
            }
            let meta = entry.metadata()?;
            let kind = if meta.is_dir() {
                pending.push(path.clone());
                Kind::Dir
            } else if meta.is_symlink() {
                Kind::Link { target: std::fs::read_link(entry.path())? }
            } else {
                Kind::File { size: meta.len() }
            };
            entries.push(Entry { path: path.to_string_lossy().into_owned(), kind });
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// Copies the tree `from` to `to`: directories made, files copied (with their modes), links
/// copied as links (never followed); anything else is refused.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(from) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    if meta.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
    } else if meta.is_dir() {
        std::fs::create_dir(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else if meta.is_file() {
        std::fs::copy(from, to).map(drop)
    } else {
        Err(io::Error::other(format!("{} is neither a file, a directory nor a link", from.display())))
    }
}

/// The providers a dependency lock file selects: (source address, version).
fn locked_providers(lock: &str) -> Vec<(String, String)> {
    let Ok(body) = hcl::parse(lock) else { return Vec::new() };
    body.blocks()
        .filter(|b| b.identifier() == "provider")
        .filter_map(|b| {
            let source = b.labels().first()?.as_str().to_string();
            let version = b.body().attributes().find(|a| a.key() == "version").and_then(|a| match a.expr() {
                hcl::Expression::String(v) => Some(v.clone()),
                _ => None,
            })?;
            Some((source, version))
        })
        .collect()
}

/// The dependency lock file to write before the first `init` of `workspace` when it requires
/// the bundled provider `source` at `version`, whose package in the mirror has checksum `h1`:
/// `init` then verifies the package against it and, the lock file not being made from local
/// checksums alone, has no reason to warn that it is incomplete.
pub fn lock_seed(workspace: &BTreeMap<String, String>, source: &str, version: &str, h1: &str) -> Option<String> {
    let (json, native): (Vec<_>, Vec<_>) = workspace.iter().partition(|(path, _)| path.ends_with(".tf.json"));
    let required_in_json = json.into_iter().any(|(_, content)| json_requires(content, source));
    let required = required_in_json
        || native.into_iter().filter_map(|(_, content)| hcl::parse(content).ok()).any(|body| {
            body.blocks().filter(|b| b.identifier() == "terraform").any(|terraform| {
                terraform.body().blocks().filter(|b| b.identifier() == "required_providers").any(|required| {
                    required.body().attributes().any(|a| match a.expr() {
                        hcl::Expression::Object(object) => object.iter().any(|(key, value)| {
                            matches!(key, hcl::ObjectKey::Identifier(i) if i.as_str() == "source")
                                && matches!(value, hcl::Expression::String(s) if s.eq_ignore_ascii_case(source))
                        }),
                        _ => false,
                    })
                })
            })
        });
    required.then(|| format!("provider \"{source}\" {{\n  version = \"{version}\"\n  hashes = [\n    \"{h1}\",\n  ]\n}}\n"))
}

/// Whether a file of Terraform's JSON syntax requires the provider `source`:
/// `{"terraform": {"required_providers": {"<name>": {"source": "<source>"}}}}`, each block level an
/// object or an array of objects.
fn json_requires(content: &str, source: &str) -> bool {
    use serde_json::Value;
    fn bodies<'a>(value: Option<&'a Value>, key: &str) -> Vec<&'a Value> {
        match value.and_then(|v| v.get(key)) {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one) => vec![one],
            None => Vec::new(),
        }
    }
    let Ok(root) = serde_json::from_str::<Value>(content) else { return false };
    bodies(Some(&root), "terraform").into_iter().flat_map(|t| bodies(Some(t), "required_providers")).any(|required| {
        required.as_object().is_some_and(|providers| {
            providers.values().any(|p| p.get("source").and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case(source)))
        })
    })
}

/// Terraform's `h1:` checksum of a provider package that is the one file `name` holding `bytes`
/// (Go's `dirhash.Hash1`: the SHA-256 of the lines `<sha256 hex>  <name>`, base64).
pub fn package_h1(name: &str, bytes: &[u8]) -> String {
    let line = format!("{}  {name}\n", hex::encode(Sha256::digest(bytes)));
    format!("h1:{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(line.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(main: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("main.tf".to_string(), main.to_string())])
    }

    #[test]
    fn the_key_changes_with_each_input() {
        let w = workspace("a");
        let base = InitKey::new("tf", Some("h1:x"), &w, &[]);
        assert_eq!(base, InitKey::new("tf", Some("h1:x"), &w, &[]));
        assert_ne!(base, InitKey::new("tf2", Some("h1:x"), &w, &[]));
        assert_ne!(base, InitKey::new("tf", None, &w, &[]));
        assert_ne!(base, InitKey::new("tf", Some("h1:x"), &workspace("b"), &[]));
        assert_ne!(base, InitKey::new("tf", Some("h1:x"), &w, &[("A".into(), "1".into())]));
        // A module's files are part of the Workspace: a changed module is never served a stale init.
        let with_module = |text: &str| {
            let mut w = workspace("module \"net\" {\n  source = \"./modules/net\"\n}\n");
            w.insert("modules/net/main.tf".into(), text.into());
            w
        };
        assert_ne!(InitKey::new("tf", None, &with_module("a"), &[]), InitKey::new("tf", None, &with_module("b"), &[]));
        // Lengths are part of what is hashed: moving bytes between fields changes the key.
        let split = BTreeMap::from([("a".to_string(), "bc".to_string())]);
        let moved = BTreeMap::from([("ab".to_string(), "c".to_string())]);
        assert_ne!(InitKey::new("tf", None, &split, &[]), InitKey::new("tf", None, &moved, &[]));
    }

    #[test]
    fn h1_is_terraforms_checksum_of_a_one_file_package() {
        // sha256("hello\n") = 5891b5b5…; sha256 of "5891b5b5…  a\n", base64.
        assert_eq!(package_h1("a", b"hello\n"), "h1:5Fn9UlLDraC1wY/JAI5JBHb+Ice9ZdUmjUVTW+ldYmc=");
    }

    #[test]
    fn a_seed_is_written_only_for_templates_requiring_the_provider() {
        let requires = "terraform {\n  required_providers {\n    s = {\n      source = \"Example.local/a/s\"\n      version = \"1.0.0\"\n    }\n  }\n}\n";
        let seed = lock_seed(&workspace(requires), "example.local/a/s", "1.0.0", "h1:x").unwrap();
        assert!(seed.contains("provider \"example.local/a/s\"") && seed.contains("\"h1:x\""), "{seed}");
        assert_eq!(locked_providers(&seed), [("example.local/a/s".to_string(), "1.0.0".to_string())]);
        assert_eq!(lock_seed(&workspace("output \"x\" { value = \"example.local/a/s\" }"), "example.local/a/s", "1.0.0", "h1:x"), None);
        // The same requirement in JSON syntax, in a module.
        let json = r#"{"terraform": [{"required_providers": {"s": {"source": "example.local/a/s", "version": "1.0.0"}}}]}"#;
        let mut w = workspace("");
        w.insert("modules/m/versions.tf.json".into(), json.into());
        assert!(lock_seed(&w, "example.local/a/s", "1.0.0", "h1:x").is_some());
        w.insert("modules/m/versions.tf.json".into(), r#"{"output": {"source": {"value": "example.local/a/s"}}}"#.into());
        assert_eq!(lock_seed(&w, "example.local/a/s", "1.0.0", "h1:x"), None);
    }

    #[tokio::test]
    async fn a_prepared_init_is_built_once_reused_and_rebuilt_when_broken() {
        let data = tempfile::tempdir().unwrap();
        let inits = PreparedInits::new(data.path());
        std::fs::create_dir_all(&inits.root).unwrap();
        let key = InitKey::new("tf", None, &workspace("a"), &[]);
        let work = data.path().join("w1");
        let Init::Build(build) = inits.claim(key.clone()).await else { panic!("nothing prepared yet") };
        std::fs::create_dir_all(work.join(".terraform/providers/p")).unwrap();
        std::fs::write(work.join(".terraform/providers/p/bin"), b"provider").unwrap();
        std::fs::write(work.join(".terraform/terraform.tfstate"), b"{}").unwrap();
        std::fs::write(work.join(LOCK_FILE), "provider \"a/b/c\" {\n  version = \"2.0.0\"\n}\n").unwrap();
        build.publish(&work, "t-1", "tf", Some("Terraform v1")).unwrap();

        let Init::Reuse(reuse) = inits.claim(key.clone()).await else { panic!("prepared") };
        let second = data.path().join("w2");
        std::fs::create_dir(&second).unwrap();
        reuse.lay_out(&second).unwrap();
        assert_eq!(std::fs::read(second.join(".terraform/providers/p/bin")).unwrap(), b"provider");
        assert!(std::fs::symlink_metadata(second.join(".terraform/providers")).unwrap().is_symlink());
        assert!(std::fs::symlink_metadata(second.join(".terraform/terraform.tfstate")).unwrap().is_file());
        assert!(std::fs::read_to_string(second.join(LOCK_FILE)).unwrap().contains("a/b/c"));
        let note = reuse.note();
        assert!(note.contains("did not run") && note.contains("- a/b/c v2.0.0") && note.contains("Terraform v1"), "{note}");
        drop(reuse);

        // A file cut short: the directory is rebuilt.
        std::fs::write(inits.dir_of(&key).join(".terraform/providers/p/bin"), b"pro").unwrap();
        assert!(matches!(inits.claim(key.clone()).await, Init::Build(_)));
        assert!(!inits.dir_of(&key).exists());
    }

    #[tokio::test]
    async fn a_builder_makes_the_others_wait_and_a_partial_build_is_never_trusted() {
        let data = tempfile::tempdir().unwrap();
        let inits = Arc::new(PreparedInits::new(data.path()));
        std::fs::create_dir_all(&inits.root).unwrap();
        let key = InitKey::new("tf", None, &workspace("a"), &[]);
        let Init::Build(build) = inits.claim(key.clone()).await else { panic!() };
        let waiting = tokio::spawn({
            let (inits, key) = (Arc::clone(&inits), key.clone());
            async move { matches!(inits.claim(key).await, Init::Reuse(_)) }
        });
        // A partial directory (a crash halfway) is not a prepared one.
        std::fs::create_dir_all(inits.root.join(format!("{}.partial", key.0))).unwrap();
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let work = data.path().join("w");
        std::fs::create_dir_all(work.join(".terraform")).unwrap();
        std::fs::write(work.join(".terraform/terraform.tfstate"), b"{}").unwrap();
        build.publish(&work, "t-1", "tf", None).unwrap();
        assert!(waiting.await.unwrap(), "the waiting job reuses what the builder made");
        // At start, leftovers of a crash are removed.
        std::fs::create_dir_all(inits.root.join("k.partial")).unwrap();
        PreparedInits::new(data.path());
        assert!(!inits.root.join("k.partial").exists());
        assert!(inits.dir_of(&key).exists());
    }
}
