//! Graceful shutdown as one small object passed to every task that must stop (the mini-redis way).
//!
//! Triggered by Ctrl-C / SIGTERM (see [`Shutdown::on_signals`]) or by code (a refused credential, a
//! finished test). Tasks poll [`Shutdown::is_triggered`] between units of work or await
//! [`Shutdown::wait`]; nothing stops mid-request. A second Ctrl-C exits at once: that is safe because
//! every payout's intent is on disk before its request leaves (SPEC section 3, rule 1).

use std::sync::Arc;

use tokio::sync::watch;

/// A shared stop flag. Cloning gives another handle on the same flag.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        Shutdown { tx: Arc::new(tx), rx }
    }

    /// Asks every holder to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once [`Shutdown::trigger`] has been called (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Triggers on the first Ctrl-C or SIGTERM; exits the process with 130 on the second Ctrl-C.
    /// `on_first` is called once, for the caller to say what is happening.
    pub fn on_signals(&self, on_first: impl Fn() + Send + 'static) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let first = async {
                match term.as_mut() {
                    Some(t) => tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = t.recv() => {} },
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            first.await;
            on_first();
            me.trigger();
            if tokio::signal::ctrl_c().await.is_ok() {
                crate::say!("second interrupt: exiting now (every sent payout's intent is already on disk)");
                std::process::exit(130);
            }
        });
    }
}
