//! Shutdown signals: the first SIGTERM (or Ctrl-C) asks for a graceful stop, a second one makes
//! it immediate. Both are observed through one [`Signals`] listener installed at start.

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Counts the shutdown signals received so far.
#[derive(Clone)]
pub struct Signals {
    count: watch::Receiver<u32>,
}

impl Signals {
    /// Installs the SIGTERM and SIGINT handlers.
    pub fn listen() -> std::io::Result<Signals> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, count) = watch::channel(0u32);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(()) = term.recv() => {}
                    Some(()) = int.recv() => {}
                    else => return,
                }
                tx.send_modify(|n| *n += 1);
                let n = *tx.borrow();
                if n == 1 {
                    tracing::info!("shutting down: no new tasks; a second signal stops running ones at once");
                } else {
                    tracing::warn!("second shutdown signal: interrupting running tasks now");
                }
            }
        });
        Ok(Signals { count })
    }

    /// Completes at the first signal.
    pub async fn requested(self) {
        self.received(1).await;
    }

    /// Completes at the second signal.
    pub async fn forced(self) {
        self.received(2).await;
    }

    async fn received(mut self, n: u32) {
        if self.count.wait_for(|c| *c >= n).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
