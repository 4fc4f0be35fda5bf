//! The sandbox: a faithful simulated AT MOON DPS gateway (SPEC section 7), served over real HTTP.
//!
//! It serves every call of SPEC sections 4 and 6.5 with the document's shapes and codes, tokens
//! that expire, TE0005 on a reused reference, payouts that go pending and settle later, HTTP 429
//! above `--rate-limit`, seeded latency and faults per profile, magic account numbers, and a ledger
//! of money moved at `GET /__sandbox/ledger`. `payrun sandbox` runs it as a process; `run --gateway
//! embedded` starts the same server in-process on a loopback port, with its world kept in the state
//! directory so a killed and resumed run meets the gateway it left.
//!
//! The sandbox is a test instrument: it must behave like the document says a gateway behaves, never
//! like payrun's client happens to expect.

mod http;
pub mod profile;
pub mod world;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use http::Stats;
pub use profile::{MAGIC_ACCOUNTS, Magic, Profile};
pub use world::{Ledger, LedgerEntry, SandboxOptions, World};

use crate::shutdown::Shutdown;

/// A sandbox serving on a loopback port.
pub struct RunningSandbox {
    pub addr: SocketAddr,
    state: Arc<http::SandboxState>,
    shutdown: Shutdown,
    task: JoinHandle<()>,
}

impl RunningSandbox {
    /// Binds `addr` (port 0 for any free port) and starts serving. `persist` keeps the world (applied
    /// payouts) in that directory across restarts; `latency` overrides the profile's.
    pub async fn start(
        opts: SandboxOptions,
        addr: SocketAddr,
        latency: Option<(u64, u64)>,
        persist: Option<&Path>,
    ) -> std::io::Result<RunningSandbox> {
        let latency = latency.unwrap_or(opts.knobs.latency);
        let world = World::open(opts, persist)?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(http::SandboxState::new(world, latency));
        let shutdown = Shutdown::new();
        let task = tokio::spawn(http::serve(listener, state.clone(), shutdown.clone()));
        Ok(RunningSandbox { addr, state, shutdown, task })
    }

    /// The base URL to give a client: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The ledger as of now.
    pub fn ledger(&self) -> Ledger {
        self.state.world().ledger()
    }

    /// The request counters as of now (what `GET /__sandbox/stats` shows).
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Stops accepting and closes every connection.
    pub async fn stop(self) {
        self.shutdown.trigger();
        let _ = self.task.await;
    }
}
