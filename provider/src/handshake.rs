//! TCP_NODELAY for the gRPC connection from Terraform.
//!
//! `tf-provider` listens on loopback TCP without TCP_NODELAY, and each response it writes in several
//! segments then waits for Terraform's delayed ACK: ~40 ms per call. The crate offers no hook on its
//! listener, but Linux copies TCP_NODELAY from a listening socket to the sockets it accepts, and Terraform
//! connects only after reading the handshake line `1|6|tcp|127.0.0.1:PORT|grpc|CERT` from our stdout.
//! So stdout goes through a pipe: when the handshake line passes, the listener at that address gets
//! TCP_NODELAY, and only then is the line forwarded.

use std::fs::File;
use std::io::{self, BufRead, BufReader, PipeReader, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, RawFd};

use rustix::net::{getsockname, sockopt};
use rustix::process::{getpid, pidfd_getfd, pidfd_open, PidfdFlags, PidfdGetfdFlags};

/// Puts the handshake relay in front of stdout. Call before the server starts.
pub fn relay_stdout() -> io::Result<()> {
    let (reader, writer) = io::pipe()?;
    let stdout = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    rustix::stdio::dup2_stdout(&writer)?;
    drop(writer);
    std::thread::spawn(move || relay(reader, stdout));
    Ok(())
}

/// Forwards the pipe to the real stdout, handling the first line as the handshake.
fn relay(reader: PipeReader, mut stdout: File) {
    let mut reader = BufReader::new(reader);
    let mut handshake = String::new();
    if reader.read_line(&mut handshake).is_err() {
        return;
    }
    let nodelay = endpoint(&handshake).ok_or_else(|| io::Error::other("no TCP address in the handshake")).and_then(set_listener_nodelay);
    if let Err(error) = nodelay {
        // Only slower: say so in Terraform's debug log (it reads our stderr) and go on.
        let _ = writeln!(io::stderr(), "[WARN] cannot set TCP_NODELAY: {error}");
    }
    if stdout.write_all(handshake.as_bytes()).is_ok() {
        let _ = io::copy(&mut reader, &mut stdout);
    }
}

/// The listening address in a handshake line.
fn endpoint(handshake: &str) -> Option<SocketAddr> {
    let mut fields = handshake.trim_end().split('|');
    match (fields.nth(2), fields.next()) {
        (Some("tcp"), Some(address)) => address.parse().ok(),
        _ => None,
    }
}

/// Sets TCP_NODELAY on this process's socket bound to `address`, found among its file descriptors.
fn set_listener_nodelay(address: SocketAddr) -> io::Result<()> {
    // pidfd_getfd on ourselves turns a descriptor number into an owned duplicate without `unsafe`.
    let me = pidfd_open(getpid(), PidfdFlags::empty())?;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Ok(number) = entry?.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        // Descriptors closed since the listing (the directory's own among them) are skipped.
        let Ok(socket) = pidfd_getfd(&me, number, PidfdGetfdFlags::empty()) else {
            continue;
        };
        let bound = getsockname(&socket).ok().and_then(|bound| SocketAddr::try_from(bound).ok());
        if bound == Some(address) {
            return Ok(sockopt::set_tcp_nodelay(&socket, true)?);
        }
    }
    Err(io::Error::other(format!("no socket bound to {address}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn the_endpoint_is_read_from_the_handshake() {
        let line = "1|6|tcp|127.0.0.1:40123|grpc|MIIBcert\n";
        assert_eq!(endpoint(line), Some("127.0.0.1:40123".parse().unwrap()));
        assert_eq!(endpoint("1|6|unix|/tmp/sock|grpc|\n"), None);
        assert_eq!(endpoint("garbage\n"), None);
    }

    #[test]
    fn accepted_sockets_inherit_nodelay_from_the_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        set_listener_nodelay(listener.local_addr().unwrap()).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }

    #[test]
    fn without_it_accepted_sockets_keep_nagle() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(!accepted.nodelay().unwrap());
    }
}
