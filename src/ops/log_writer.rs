//! Where log lines go: appended to a buffer in memory and written to stderr by a thread of their
//! own every [`FLUSH_EVERY`], everything that queued up in one system call. Writing each line
//! (the access log has one per request) cost a `write` per request; handing each line to a writer
//! thread woke that thread once per request or two. Both were about a tenth of a `GetTask`'s CPU
//! (docs/benchmarks.md). A line reaches stderr at most [`FLUSH_EVERY`] after it was logged, and
//! every line at exit when the [`LogFlusher`] is dropped; a `kill -9` loses the last interval.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a line may wait in memory.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// Bytes that may wait; a line that would pass this is written at once, with what waits.
const MAX_WAITING: usize = 4 << 20;

struct Shared {
    waiting: Mutex<Waiting>,
    wake: Condvar,
    /// Where lines go. Taken while `waiting` is still held, so batches leave in the order they
    /// were taken, whoever writes them.
    out: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct Waiting {
    bytes: Vec<u8>,
    stopping: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn out(&self) -> MutexGuard<'_, Box<dyn Write + Send>> {
        self.out.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A handle log lines are written to (cheap to clone: one per event).
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

impl Write for LogWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut waiting = self.shared.lock();
        if waiting.bytes.len() + line.len() > MAX_WAITING {
            // The output is not keeping up: write in the caller's time rather than hold more.
            let mut out = self.shared.out();
            let held = std::mem::take(&mut waiting.bytes);
            drop(waiting);
            out.write_all(&held)?;
            out.write_all(line)?;
            return Ok(line.len());
        }
        waiting.bytes.extend_from_slice(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Owns the flushing thread; dropping it writes what waits and stops the thread.
pub struct LogFlusher {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogFlusher {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A writer for log lines and the flusher that writes them to `out` (stderr in the server).
pub fn log_writer(out: impl Write + Send + 'static) -> (LogWriter, LogFlusher) {
    let shared = Arc::new(Shared { waiting: Mutex::default(), wake: Condvar::new(), out: Mutex::new(Box::new(out)) });
    let flusher_shared = Arc::clone(&shared);
    let guard_shared = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            let mut spare = Vec::new();
            loop {
                let waiting = flusher_shared.lock();
                let (mut waiting, _) = flusher_shared
                    .wake
                    .wait_timeout_while(waiting, FLUSH_EVERY, |w| !w.stopping)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                std::mem::swap(&mut waiting.bytes, &mut spare);
                let stopping = waiting.stopping;
                let mut out = flusher_shared.out();
                drop(waiting);
                if !spare.is_empty() {
                    // Nowhere to report a failing output: those lines are lost.
                    let _ = out.write_all(&spare).and_then(|()| out.flush());
                    spare.clear();
                }
                drop(out);
                if stopping {
                    break;
                }
            }
        })
        .expect("the log writer thread starts");
    (LogWriter { shared }, LogFlusher { shared: guard_shared, thread: Some(thread) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test can read while the flusher owns a handle to it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_in_order_within_the_interval_and_all_of_them_at_drop() {
        let out = Shared::default();
        let (writer, flusher) = log_writer(out.clone());
        let mut w = writer.clone();
        w.write_all(b"one\n").unwrap();
        writer.clone().write_all(b"two\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while out.0.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(FLUSH_EVERY);
        }
        assert_eq!(*out.0.lock().unwrap(), b"one\ntwo\n", "written by the thread without a drop");
        w.write_all(b"three\n").unwrap();
        drop(flusher);
        assert_eq!(*out.0.lock().unwrap(), b"one\ntwo\nthree\n", "the rest at drop");
    }

    #[test]
    fn lines_past_the_waiting_limit_go_to_the_same_output_in_order() {
        let out = Shared::default();
        let (mut writer, flusher) = log_writer(out.clone());
        let line = |i: usize| format!("{i:08} {}\n", "x".repeat(1000));
        let count = 3 * MAX_WAITING / 1010;
        for i in 0..count {
            writer.write_all(line(i).as_bytes()).unwrap();
        }
        drop(flusher);
        let expected: String = (0..count).map(line).collect();
        assert!(*out.0.lock().unwrap() == expected.as_bytes(), "every line, once, in order");
    }
}
