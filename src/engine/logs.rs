//! A task's log as it is written: Terraform's output is buffered per (command, stream) and
//! flushed to the store a few times a second, so readers see a running task's log while it runs,
//! without one write per line. Past the size cap, one truncation note is written and the rest is
//! dropped (the pipes keep being drained).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::redact::Redactor;
use crate::store::provisioning::{Fence, LogChunk};
use crate::store::Store;

/// How often buffered output reaches the store.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

struct Buffer {
    next_seq: i64,
    pending: Vec<LogChunk>,
    written_bytes: usize,
    truncated: bool,
}

/// The log of one task.
#[derive(Clone)]
pub struct TaskLog {
    store: Store,
    /// The worker's claim on the task: writes stop once it is superseded.
    fence: Fence,
    cap_bytes: usize,
    buffer: Arc<Mutex<Buffer>>,
    /// Held while a flush writes the chunks it took, so that [`TaskLog::redact_pending`] sees them all.
    flushing: Arc<tokio::sync::Mutex<()>>,
}

impl TaskLog {
    /// A log for the task `fence` holds, holding at most `cap_bytes` of output.
    pub fn new(store: Store, fence: Fence, cap_bytes: usize) -> Self {
        TaskLog {
            store,
            fence,
            cap_bytes,
            buffer: Arc::new(Mutex::new(Buffer { next_seq: 1, pending: Vec::new(), written_bytes: 0, truncated: false })),
            flushing: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Appends output of `command` on `stream`.
    pub fn push(&self, command: &str, stream: &str, text: &str) {
        let mut b = self.buffer.lock().expect("log buffer lock");
        if b.truncated {
            return;
        }
        let room = self.cap_bytes.saturating_sub(b.written_bytes);
        let (text, truncate) = if text.len() > room {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            (&text[..cut], true)
        } else {
            (text, false)
        };
        b.written_bytes += text.len();
        append(&mut b, command, stream, text);
        if truncate {
            b.truncated = true;
            let note = format!("\n[servicecatalog: log truncated at {} bytes; further output was discarded]\n", self.cap_bytes);
            append(&mut b, command, stream, &note);
        }
    }

    /// The chunks not written yet, taken out of the buffer (the task's last lines, which
    /// `finish_task` writes with the outcome).
    pub fn take_pending(&self) -> Vec<LogChunk> {
        std::mem::take(&mut self.buffer.lock().expect("log buffer lock").pending)
    }

    /// Masks secrets learnt late (an apply's new sensitive outputs) in the output not written
    /// yet, once a flush under way is done. What was written before stays as it was masked then.
    pub async fn redact_pending(&self, redactor: &Redactor) {
        let _flushing = self.flushing.lock().await;
        let mut b = self.buffer.lock().expect("log buffer lock");
        for chunk in &mut b.pending {
            if let Cow::Owned(masked) = redactor.redact(&chunk.content) {
                chunk.content = masked;
            }
        }
    }

    /// Writes what is buffered.
    pub async fn flush(&self) {
        let _flushing = self.flushing.lock().await;
        let chunks = self.take_pending();
        match self.store.append_logs(&self.fence, &chunks).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(task_id = %self.fence.job_id, chunks = chunks.len(), "task log output discarded: the task finished or was taken over")
            }
            Err(e) => {
                tracing::warn!(task_id = %self.fence.job_id, error = %e, "could not write task log; keeping it for the next flush");
                let mut b = self.buffer.lock().expect("log buffer lock");
                let mut kept = chunks;
                kept.append(&mut b.pending);
                b.pending = kept;
            }
        }
    }

    /// Flushes periodically until [`Flusher::stop`], which lets a flush under way finish (an
    /// aborted write would lose the chunks it had taken).
    pub fn flush_in_background(&self) -> Flusher {
        let log = self.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => log.flush().await,
                    _ = &mut stopped => break,
                }
            }
        });
        Flusher { stop, handle }
    }
}

/// The background flusher of a [`TaskLog`].
pub struct Flusher {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

impl Flusher {
    /// Stops flushing after the flush under way, if any.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.await;
    }
}

fn append(b: &mut Buffer, command: &str, stream: &str, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(last) = b.pending.last_mut().filter(|l| l.command == command && l.stream == stream) {
        last.content.push_str(text);
        return;
    }
    let seq = b.next_seq;
    b.next_seq += 1;
    b.pending.push(LogChunk { seq, command: command.to_string(), stream: stream.to_string(), content: text.to_string() });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    /// The log, capped at `cap_bytes`, of the launch task `task-1`, seeded and claimed.
    async fn task_1_log(store: &Store, cap_bytes: usize) -> TaskLog {
        crate::store::provisioning::tests::seed_task(store, "task-1").await;
        let (_, fence) = store.claim::<crate::store::provisioning::Task>("w", 60_000).await.unwrap().unwrap();
        TaskLog::new(store.clone(), fence, cap_bytes)
    }

    #[tokio::test]
    async fn output_is_merged_per_stream_capped_and_readable_after_a_flush() {
        testing::each_store(|store| async move {
            let log = task_1_log(&store, 20).await;
            log.push("init", "stdout", "a\n");
            log.push("init", "stdout", "b\n");
            log.push("init", "stderr", "c\n");
            log.flush().await;
            let chunks = store.task_logs("task-1", 0, 100).await.unwrap();
            assert_eq!(chunks.len(), 2);
            assert_eq!(chunks[0].content, "a\nb\n");
            log.push("apply", "stdout", "0123456789abcdefghij");
            log.push("apply", "stdout", "more");
            log.flush().await;
            let chunks = store.task_logs("task-1", 2, 100).await.unwrap();
            assert!(chunks[0].content.starts_with("0123456789abcd"));
            assert!(chunks[0].content.contains("log truncated"));
            assert!(!chunks[0].content.contains("more"));
        })
        .await;
    }

    #[tokio::test]
    async fn secrets_learnt_late_are_masked_in_what_is_not_written_yet() {
        testing::each_store(|store| async move {
            let log = task_1_log(&store, 1000).await;
            log.push("apply", "stdout", "made late-secret\n");
            log.redact_pending(&Redactor::new(["late-secret"])).await;
            log.flush().await;
            let chunks = store.task_logs("task-1", 0, 100).await.unwrap();
            assert_eq!(chunks[0].content, "made ******\n");
        })
        .await;
    }
}
