//! The job runner: one process per job, started in the job's sandbox (this same executable,
//! `servicecatalog __sandbox-runner TERRAFORM`), that runs the job's Terraform commands one after
//! another as the server asks. One sandbox per job rather than per command: namespaces and mounts
//! are set up once, and nothing a command leaves behind outlives the job.
//!
//! The wire, over the runner's stdin and stdout:
//! - server → runner: one line per command, its arguments as a JSON array of strings;
//! - runner → server: frames of one kind byte, a big-endian `u32` length and the payload:
//!   `O` (a chunk of Terraform's stdout), `E` (of its stderr), `X` (the command ended: its raw
//!   wait status, decimal). The runner exits when its stdin closes.

use std::io::{self, BufRead, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The first argument that makes the executable a runner.
pub const RUNNER_ARG: &str = "__sandbox-runner";

/// What a frame carries.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A chunk of stdout.
    Stdout(Vec<u8>),
    /// A chunk of stderr.
    Stderr(Vec<u8>),
    /// The command ended with this status.
    Exit(ExitStatus),
}

/// Largest frame payload (chunks are read 64 KiB at a time).
const MAX_FRAME: u32 = 1024 * 1024;

/// Runs the commands read from stdin with `binary`, until stdin closes. The runner's entry point.
pub fn serve(binary: &Path) -> io::Result<()> {
    // Unbuffered: each frame is one write.
    let out = Arc::new(Mutex::new(std::fs::File::from(std::os::fd::AsFd::as_fd(&io::stdout()).try_clone_to_owned()?)));
    for line in io::stdin().lock().lines() {
        let args: Vec<String> = serde_json::from_str(&line?).map_err(io::Error::other)?;
        let status = match Command::new(binary).args(&args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
            Ok(mut child) => {
                let pumps = [
                    (child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>), b'O'),
                    (child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>), b'E'),
                ]
                .map(|(stream, kind)| {
                    let out = Arc::clone(&out);
                    std::thread::spawn(move || stream.map_or(Ok(()), |stream| pump(stream, kind, &out)))
                });
                let status = child.wait()?;
                for pump in pumps {
                    pump.join().map_err(|_| io::Error::other("a pump thread panicked"))??;
                }
                status
            }
            Err(e) => {
                write_frame(&mut *lock(&out), b'E', format!("cannot start {}: {e}\n", binary.display()).as_bytes())?;
                ExitStatus::from_raw(127 << 8)
            }
        };
        write_frame(&mut *lock(&out), b'X', status.into_raw().to_string().as_bytes())?;
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Copies `stream` into frames of `kind` until it ends.
fn pump(mut stream: impl Read, kind: u8, out: &Mutex<impl Write>) -> io::Result<()> {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        write_frame(&mut *lock(out), kind, &buf[..n])?;
    }
}

fn write_frame(out: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    out.write_all(&frame)
}

/// The command line the server sends for `args`.
pub fn command_line(args: &[&str]) -> String {
    let mut line = serde_json::to_string(args).expect("strings serialise");
    line.push('\n');
    line
}

/// Reads the next frame; `None` when the runner's stdout ended.
pub async fn read_frame(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<Frame>> {
    let mut header = [0u8; 5];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(header[1..].try_into().expect("four bytes"));
    if len > MAX_FRAME {
        return Err(io::Error::other(format!("a runner frame of {len} bytes")));
    }
    let mut payload = vec![0; len as usize];
    stream.read_exact(&mut payload).await?;
    match header[0] {
        b'O' => Ok(Some(Frame::Stdout(payload))),
        b'E' => Ok(Some(Frame::Stderr(payload))),
        b'X' => {
            let raw = std::str::from_utf8(&payload)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other("a malformed exit frame"))?;
            Ok(Some(Frame::Exit(ExitStatus::from_raw(raw))))
        }
        kind => Err(io::Error::other(format!("a runner frame of unknown kind {kind}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b'O', b"hello\nwor").unwrap();
        write_frame(&mut wire, b'E', b"").unwrap();
        write_frame(&mut wire, b'X', (3 << 8).to_string().as_bytes()).unwrap();
        let mut reader = wire.as_slice();
        assert_eq!(read_frame(&mut reader).await.unwrap(), Some(Frame::Stdout(b"hello\nwor".to_vec())));
        assert_eq!(read_frame(&mut reader).await.unwrap(), Some(Frame::Stderr(Vec::new())));
        match read_frame(&mut reader).await.unwrap() {
            Some(Frame::Exit(status)) => assert_eq!(status.code(), Some(3)),
            other => panic!("{other:?}"),
        }
        assert_eq!(read_frame(&mut reader).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_bad_frame_is_an_error() {
        let mut reader: &[u8] = b"Z\0\0\0\x01x";
        assert!(read_frame(&mut reader).await.is_err());
    }

    #[test]
    fn commands_are_json_lines() {
        assert_eq!(command_line(&["plan", "-out=tfplan"]), "[\"plan\",\"-out=tfplan\"]\n");
    }
}
