//! The Terraform files of a downloaded file or archive, read in memory: entries are never
//! written to disk, so links are never followed (a link named like a Terraform file is refused);
//! unsafe paths are refused wherever they are; the unpacked bytes of all entries together are
//! bounded while decompressing, so a small archive cannot expand without limit.

use std::collections::BTreeMap;
use std::io::Read;

use super::{Collector, FetchError, FetchResult, MAX_ENTRIES};

/// One downloaded `.tf` or `.tf.json` file, named `name` in the Workspace.
pub(super) fn single(name: &str, bytes: Vec<u8>) -> FetchResult<BTreeMap<String, String>> {
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned();
    let mut collector = Collector::new("");
    let relative = collector.wanted(&name, false)?.ok_or_else(|| FetchError(format!("{name:?} is not a Terraform file name.")))?;
    collector.take(relative, bytes)?;
    collector.finish()
}

fn bad_archive(kind: &str, e: impl std::fmt::Display) -> FetchError {
    FetchError(format!("the {kind} archive cannot be read: {e}."))
}

fn too_many_entries() -> FetchError {
    FetchError(format!("the archive holds more than {MAX_ENTRIES} entries."))
}

fn too_big(max: u64) -> FetchError {
    FetchError(format!("the archive unpacks to more than {max} bytes."))
}

/// The Terraform files under `subdir` of a zip archive; `max` bounds the unpacked bytes read.
pub(super) fn zip(bytes: &[u8], subdir: &str, max: u64) -> FetchResult<BTreeMap<String, String>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad_archive("zip", e))?;
    if archive.len() > MAX_ENTRIES {
        return Err(too_many_entries());
    }
    let mut collector = Collector::new(subdir);
    let mut unpacked = 0u64;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| bad_archive("zip", e))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_string();
        let link = entry.unix_mode().is_some_and(|mode| mode & 0o170000 == 0o120000);
        let Some(relative) = collector.wanted(&name, link)? else { continue };
        Collector::size_ok(&relative, entry.size())?;
        // The declared size is the archive's word: read no more than the limits allow.
        let mut content = Vec::new();
        let cap = (super::MAX_FILE_BYTES + 1).min(max - unpacked + 1);
        (&mut entry).take(cap).read_to_end(&mut content).map_err(|e| bad_archive("zip", e))?;
        unpacked += content.len() as u64;
        if unpacked > max {
            return Err(too_big(max));
        }
        collector.take(relative, content)?;
    }
    collector.finish()
}

/// Counts the bytes read through it and fails past `max`.
struct Bounded<R> {
    inner: R,
    read: u64,
    max: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(std::io::Error::other(format!("unpacks to more than {} bytes", self.max)));
        }
        Ok(n)
    }
}

/// The Terraform files under `subdir` of a gzip-compressed tar archive; `max` bounds the bytes
/// decompressed (entries skipped are decompressed too).
pub(super) fn tar_gz(bytes: &[u8], subdir: &str, max: u64) -> FetchResult<BTreeMap<String, String>> {
    let mut reader = Bounded { inner: flate2::read::GzDecoder::new(bytes), read: 0, max };
    let mut archive = tar::Archive::new(&mut reader);
    let mut collector = Collector::new(subdir);
    let fail = |e: std::io::Error| if e.to_string().starts_with("unpacks to more than") { too_big(max) } else { bad_archive("tar.gz", e) };
    for (count, entry) in archive.entries().map_err(fail)?.enumerate() {
        if count == MAX_ENTRIES {
            return Err(too_many_entries());
        }
        let mut entry = entry.map_err(fail)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() || kind.is_gnu_longname() {
            continue;
        }
        let path = entry.path().map_err(fail)?.to_string_lossy().into_owned();
        let link = !kind.is_file();
        let Some(relative) = collector.wanted(&path, link)? else { continue };
        Collector::size_ok(&relative, entry.size())?;
        let mut content = Vec::new();
        (&mut entry).take(super::MAX_FILE_BYTES + 1).read_to_end(&mut content).map_err(fail)?;
        collector.take(relative, content)?;
    }
    collector.finish()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in entries {
            out.start_file(*name, options).unwrap();
            out.write_all(content).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    /// A tar.gz of `entries`; a name starting `link:` is a symlink to the content.
    fn tar_gz_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
        for (name, content) in entries {
            let mut header = tar::Header::new_gnu();
            if let Some(name) = name.strip_prefix("link:") {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_cksum();
                builder.append_link(&mut header, name, std::str::from_utf8(content).unwrap()).unwrap();
            } else {
                header.set_size(content.len() as u64);
                header.set_mode(0o644);
                // Set the raw name: `append_data` refuses `..` itself, an attacker's tool would not.
                header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                header.set_cksum();
                builder.append(&header, *content).unwrap();
            }
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn archives_yield_their_terraform_files_under_the_subdirectory() {
        let entries: &[(&str, &[u8])] = &[
            ("repo-1/README.md", b"# hi"),
            ("repo-1/tf/main.tf", b"variable \"a\" {}"),
            ("repo-1/tf/modules/net/main.tf.json", b"{}"),
            ("repo-1/tf/.git/config.tf", b"x"),
            ("repo-1/other.tf", b"x"),
        ];
        for files in [zip(&zip_of(entries), "repo-1/tf", 1 << 20).unwrap(), tar_gz(&tar_gz_of(entries), "repo-1/tf", 1 << 20).unwrap()] {
            assert_eq!(files.keys().collect::<Vec<_>>(), ["main.tf", "modules/net/main.tf.json"]);
            assert_eq!(files["main.tf"], "variable \"a\" {}");
        }
        assert!(zip(&zip_of(entries), "nowhere", 1 << 20).unwrap_err().0.contains("no .tf"));
    }

    #[test]
    fn unsafe_paths_and_links_are_refused() {
        let traversal: &[(&str, &[u8])] = &[("main.tf", b""), ("../evil.tf", b"")];
        assert!(zip(&zip_of(traversal), "", 1 << 20).unwrap_err().0.contains("unsafe path"));
        assert!(tar_gz(&tar_gz_of(traversal), "", 1 << 20).unwrap_err().0.contains("unsafe path"));
        let absolute: &[(&str, &[u8])] = &[("/etc/x.tf", b"")];
        assert!(tar_gz(&tar_gz_of(absolute), "", 1 << 20).unwrap_err().0.contains("unsafe path"));
        let link: &[(&str, &[u8])] = &[("main.tf", b""), ("link:secrets.tf", b"/etc/shadow")];
        assert!(tar_gz(&tar_gz_of(link), "", 1 << 20).unwrap_err().0.contains("link"));
        let other_link: &[(&str, &[u8])] = &[("main.tf", b""), ("link:docs", b"/etc")];
        assert!(tar_gz(&tar_gz_of(other_link), "", 1 << 20).is_ok());
    }

    #[test]
    fn unpacked_bytes_are_bounded_while_decompressing() {
        // A megabyte of zeros compresses to about a kilobyte.
        let zeros = vec![0u8; 1 << 20];
        let bomb: &[(&str, &[u8])] = &[("main.tf", b""), ("padding.bin", &zeros)];
        let packed = tar_gz_of(bomb);
        assert!(packed.len() < 10_000);
        assert!(tar_gz(&packed, "", 64 * 1024).unwrap_err().0.contains("more than 65536 bytes"));
        assert!(tar_gz(&packed, "", 4 << 20).is_ok());
        let big_tf: &[(&str, &[u8])] = &[("main.tf", &zeros)];
        assert!(zip(&zip_of(big_tf), "", 4 << 20).unwrap_err().0.contains("bytes long"));
        let files: Vec<(String, Vec<u8>)> = (0..10).map(|i| (format!("f{i}.tf"), vec![b' '; 100_000])).collect();
        let entries: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (n.as_str(), c.as_slice())).collect();
        assert!(zip(&zip_of(&entries), "", 500_000).unwrap_err().0.contains("more than 500000"));
        assert!(zip(b"not a zip", "", 1 << 20).unwrap_err().0.contains("zip archive cannot be read"));
        assert!(tar_gz(b"not gzip", "", 1 << 20).unwrap_err().0.contains("tar.gz archive cannot be read"));
    }

    #[test]
    fn a_single_file_is_named_like_the_url() {
        assert_eq!(single("vpc%20net.tf", b"x".to_vec()).unwrap().keys().collect::<Vec<_>>(), ["vpc net.tf"]);
        assert!(single("main.tf", vec![0xff]).is_err());
    }
}
