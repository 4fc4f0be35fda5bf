//! TLS is always verified: a gateway whose certificate no trusted authority signed is refused
//! before any request leaves the process, and payrun has no switch to accept it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use payrun::config::example_credentials;
use payrun::gateway::client::ClientOptions;
use payrun::gateway::{GatewayClient, PayoutOutcome, PayoutRequest, StatusOutcome};
use payrun::money::Amount;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn a_gateway_with_a_self_signed_certificate_is_refused_before_any_request() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = CertificateDer::from_pem_slice(include_bytes!("../fixtures/selfsigned.crt")).expect("certificate");
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("../fixtures/selfsigned.key")).expect("key");
    let config =
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert], key).expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (connections, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let (acceptor, r) = (acceptor.clone(), r.clone());
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 64];
                    if matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {
                        r.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });

    let client = GatewayClient::new(&ClientOptions::new(format!("https://localhost:{port}")), example_credentials())
        .expect("an https client builds");
    let req = PayoutRequest {
        amount: Amount::from_rupees(1500),
        name: "Ravi Kumar".into(),
        account: "39628544321".into(),
        ifsc: "SBIN0011243".into(),
        mode: "IMPS".into(),
        remarks: String::new(),
        external_ref: "TLS-1".into(),
        payee_list_id: String::new(),
        latitude: String::new(),
        longitude: String::new(),
    };
    // The token request is the first request: it must fail at the handshake, so the payout is
    // provably not sent, and nothing reaches the server.
    let outcome = client.payout(&req, None).await;
    assert!(matches!(outcome, PayoutOutcome::NotSent { .. }), "{outcome:?}");
    assert!(matches!(client.status("TLS-1").await, StatusOutcome::NotSent { .. }));
    assert!(connections.load(Ordering::SeqCst) >= 1, "the client did try to connect");
    assert_eq!(requests.load(Ordering::SeqCst), 0, "no request was sent over an unverified connection");
}
