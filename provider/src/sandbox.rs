//! The sandbox directory: confinement of user-given paths to it, and content checksums.
//!
//! A path is checked twice. [`parse_relative`] is lexical (no absolute path, no `..`) and needs no file
//! system, so it also serves validation before the provider is configured. [`Sandbox::resolve`] then walks
//! the path inside the root and follows every symbolic link it meets, refusing any that leads outside.

use std::io;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why a path cannot be used inside the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("the path `{0}` names no file; give a file path relative to the sandbox root")]
    Empty(String),
    #[error("the path `{0}` is absolute; give a path relative to the sandbox root")]
    Absolute(String),
    #[error("the path `{0}` contains `..`; paths must stay inside the sandbox")]
    ParentDir(String),
    #[error("the path `{path}` leads through a symbolic link to `{target}`, outside the sandbox")]
    Escape { path: String, target: PathBuf },
    #[error("the path `{0}` is a symbolic link whose target does not exist")]
    DanglingSymlink(String),
    #[error("cannot inspect `{path}` in the sandbox: {source}")]
    Io { path: String, source: io::Error },
}

/// Checks `path` lexically and returns it without `.` components.
pub fn parse_relative(path: &str) -> Result<PathBuf, PathError> {
    let mut normalized = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(name) => normalized.push(name),
            Component::CurDir => {}
            Component::ParentDir => return Err(PathError::ParentDir(path.to_owned())),
            Component::RootDir | Component::Prefix(_) => return Err(PathError::Absolute(path.to_owned())),
        }
    }
    if normalized.as_os_str().is_empty() {
        return Err(PathError::Empty(path.to_owned()));
    }
    Ok(normalized)
}

/// Hex-encoded SHA-256 of `content`, the `checksum` attribute of `sandbox_file`.
pub fn checksum(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// A directory that every resource of the provider stays inside.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Canonical (absolute, symlink-free) root, so that `starts_with` checks are meaningful.
    root: PathBuf,
}

impl Sandbox {
    /// Uses `root` as the sandbox, creating it when missing.
    pub fn open(root: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        Ok(Self { root: root.canonicalize()? })
    }

    /// Maps a user-given relative path to a location inside the sandbox, following symbolic links.
    ///
    /// The result may not exist yet; every part of it that exists is inside the root.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, PathError> {
        let relative = parse_relative(path)?;
        let mut resolved = self.root.clone();
        let mut components = relative.components();
        for component in components.by_ref() {
            let next = resolved.join(component);
            match std::fs::symlink_metadata(&next) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    resolved = next.canonicalize().map_err(|_| PathError::DanglingSymlink(path.to_owned()))?;
                    if !resolved.starts_with(&self.root) {
                        return Err(PathError::Escape { path: path.to_owned(), target: resolved });
                    }
                }
                Ok(_) => resolved = next,
                // Nothing below a missing directory exists, so the rest holds no symbolic link.
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    resolved = next;
                    break;
                }
                Err(source) => return Err(PathError::Io { path: path.to_owned(), source }),
            }
        }
        resolved.extend(components);
        Ok(resolved)
    }

    /// Removes the directories above `path` that are empty, up to the root (excluded).
    pub fn remove_empty_parents(&self, path: &Path) {
        let parents = path.ancestors().skip(1);
        for directory in parents.take_while(|dir| dir.starts_with(&self.root) && *dir != self.root) {
            // Fails, and so stops, at the first directory that is not empty.
            if std::fs::remove_dir(directory).is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn sandbox() -> (tempfile::TempDir, Sandbox) {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::open(&dir.path().join("root")).unwrap();
        (dir, sandbox)
    }

    #[test]
    fn relative_paths_are_normalized() {
        assert_eq!(parse_relative("a/./b.txt").unwrap(), PathBuf::from("a/b.txt"));
        assert_eq!(parse_relative("a//b/").unwrap(), PathBuf::from("a/b"));
    }

    #[test]
    fn lexical_escapes_are_refused() {
        assert!(matches!(parse_relative("/etc/passwd"), Err(PathError::Absolute(_))));
        assert!(matches!(parse_relative("../x"), Err(PathError::ParentDir(_))));
        assert!(matches!(parse_relative("a/../../x"), Err(PathError::ParentDir(_))));
        // Even a `..` that would stay inside is refused: simpler to explain than to allow.
        assert!(matches!(parse_relative("a/../b"), Err(PathError::ParentDir(_))));
        assert!(matches!(parse_relative(""), Err(PathError::Empty(_))));
        assert!(matches!(parse_relative("./."), Err(PathError::Empty(_))));
    }

    #[test]
    fn plain_paths_resolve_under_the_root() {
        let (_dir, sandbox) = sandbox();
        let resolved = sandbox.resolve("new/dir/file.txt").unwrap();
        assert_eq!(resolved, sandbox.root.join("new/dir/file.txt"));
    }

    #[test]
    fn symlink_escapes_are_refused() {
        let (dir, sandbox) = sandbox();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "x").unwrap();
        symlink(&outside, sandbox.root.join("dir-link")).unwrap();
        symlink(outside.join("secret"), sandbox.root.join("file-link")).unwrap();
        symlink(outside.join("missing"), sandbox.root.join("dangling")).unwrap();

        for path in ["dir-link/secret", "dir-link/new-file", "file-link"] {
            assert!(matches!(sandbox.resolve(path), Err(PathError::Escape { .. })), "{path} escaped");
        }
        assert!(matches!(sandbox.resolve("dangling"), Err(PathError::DanglingSymlink(_))));
    }

    #[test]
    fn symlinks_inside_the_sandbox_are_followed() {
        let (_dir, sandbox) = sandbox();
        std::fs::create_dir(sandbox.root.join("real")).unwrap();
        symlink("real", sandbox.root.join("alias")).unwrap();
        assert_eq!(sandbox.resolve("alias/f").unwrap(), sandbox.root.join("real/f"));
    }

    #[test]
    fn a_symlinked_root_is_canonicalized() {
        let (dir, sandbox) = sandbox();
        symlink(&sandbox.root, dir.path().join("root-link")).unwrap();
        let via_link = Sandbox::open(&dir.path().join("root-link")).unwrap();
        assert_eq!(via_link.root, sandbox.root);
    }

    #[test]
    fn only_empty_parents_are_removed() {
        let (_dir, sandbox) = sandbox();
        std::fs::create_dir_all(sandbox.root.join("a/b/c")).unwrap();
        std::fs::write(sandbox.root.join("a/keep"), "x").unwrap();
        sandbox.remove_empty_parents(&sandbox.root.join("a/b/c/gone.txt"));
        assert!(!sandbox.root.join("a/b").exists());
        assert!(sandbox.root.join("a/keep").exists());
        sandbox.remove_empty_parents(&sandbox.root.join("top.txt"));
        assert!(sandbox.root.exists());
    }

    #[test]
    fn checksum_is_sha256_hex() {
        assert_eq!(checksum(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(checksum(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
