//! Secrets at rest: AccessKey secrets (and later launch-role variables) are sealed with
//! AES-256-GCM under a master key kept outside the database — a file in the data directory
//! (mode 0600), or `SERVICECATALOG_MASTER_KEY` (64 hex digits) so several nodes can share it.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use anyhow::Context;
use base64::Engine;

/// Seals and opens secrets with the master key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

const PREFIX: &str = "v1:";
const KEY_FILE: &str = "master.key";

impl SecretBox {
    /// A box from 32 raw key bytes.
    pub fn new(key: &[u8; 32]) -> Self {
        SecretBox { cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)) }
    }

    /// The master key from `hex_key` when given, else from `<data_dir>/master.key`, generated
    /// there on first use.
    pub fn load_or_create(data_dir: &Path, hex_key: Option<&str>) -> anyhow::Result<Self> {
        let text = match hex_key {
            Some(text) => text.trim().to_string(),
            None => {
                let path = data_dir.join(KEY_FILE);
                if !path.exists() {
                    crate::fs::write_private(&path, Self::generate_hex().as_bytes())
                        .with_context(|| format!("cannot write the master key to {}", path.display()))?;
                    tracing::info!(path = %path.display(), "generated the master key for secrets at rest");
                }
                std::fs::read_to_string(&path).with_context(|| format!("cannot read the master key {}", path.display()))?
            }
        };
        Self::from_hex(&text)
    }

    /// A box from a key written as 64 hex digits.
    pub fn from_hex(text: &str) -> anyhow::Result<Self> {
        let bytes = hex::decode(text.trim()).ok().filter(|b| b.len() == 32).context("the master key must be 64 hex digits")?;
        Ok(Self::new(bytes.as_slice().try_into().expect("length checked")))
    }

    /// A new random key, as 64 hex digits.
    pub fn generate_hex() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    /// Where the master key lives in `data_dir` (when it is not given by the environment).
    pub fn key_file(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join(KEY_FILE)
    }

    /// Encrypts `plaintext` with a fresh nonce.
    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(self.cipher.encrypt(&nonce, plaintext.as_bytes()).expect("AES-GCM encryption does not fail"));
        format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// Decrypts what [`seal`](Self::seal) produced; `None` if it was sealed under another key or
    /// altered.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let raw = base64::engine::general_purpose::STANDARD.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if raw.len() < 12 {
            return None;
        }
        let (nonce, ciphertext) = raw.split_at(12);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), ciphertext).ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_hides_the_secret() {
        let b = SecretBox::new(&[7; 32]);
        let sealed = b.seal("s3cr3t");
        assert!(!sealed.contains("s3cr3t"));
        assert_ne!(sealed, b.seal("s3cr3t"), "nonces differ");
        assert_eq!(b.open(&sealed).as_deref(), Some("s3cr3t"));
        assert_eq!(SecretBox::new(&[8; 32]).open(&sealed), None);
        assert_eq!(b.open("v1:AAAA"), None);
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sealed = SecretBox::load_or_create(dir.path(), None).unwrap().seal("x");
        let again = SecretBox::load_or_create(dir.path(), None).unwrap();
        assert_eq!(again.open(&sealed).as_deref(), Some("x"));
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(SecretBox::load_or_create(dir.path(), Some("abc")).is_err());
    }
}
