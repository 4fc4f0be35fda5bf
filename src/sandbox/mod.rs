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
pub use world::{Ledger, LedgerEntry, PgState, SandboxOptions, World};

/// Which credentials each call takes, and how: what `payrun sandbox --help` and the sandbox's
/// startup banner say (header names only, never a value), so an integrator with the document's
/// samples does not have to guess which call wants which headers.
pub const CREDENTIALS_BY_CALL: &str = "\
Credentials each call takes (names as the API document writes them):
  token         POST /api/uat/merchant/getToken: access_key, merchant_key,
                client_id, api_password, as headers, as form fields, or as
                the document's Authorization headers
                (`Authorization: access_key KEY`, one per credential, or the
                four values alone in that order)
  payout        POST /api/payoutapi, a form (not JSON): fields user_id and
                utoken (the token)
  PAYOUTSTATUS  POST /api/AtMoonPayout, JSON
                {\"method\":\"PAYOUTSTATUS\",\"payout_id\":ID}: headers
                x-client-id (the client id), x-client-secret (the API
                password), user_id and utoken (the token)
  PAYIN         POST /api/AtMoonPayout, JSON {\"method\":\"PAYIN\",...}:
                headers user_id and utoken
  verify        GET /payout/status/{reference}: any one of the token's four
                credentials, x-client-id + x-client-secret, or user_id +
                utoken
  PG initiate   POST /api/uat/merchant/pg/payment/initiate, a form: the
                token's four credentials (headers, fields or Authorization)
                and the field api_token (the token)
  PG page       GET the url initiate returns: a sandbox page to pay or
                decline (no credentials)
  PG verify     POST /pg/payment/{token}/response, a form (transaction_id,
                pg_reference_no): the token's four credentials; COMPLETED
                only after the page was used to pay
";

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
