//! TLS through the library: certificates a test makes with rcgen (one
//! expired, one for another name), a server of the lab with them, and a
//! client of the lab that must refuse each in words a learner reads.

use std::net::SocketAddr;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use socklab_net::{ClientWish, Lab, NetError, ServeMode, ServerWish, Trust};

/// A CA and a server certificate it signed for `name`, valid from
/// `from` to `until` (days from now), written as PEM files in `dir`:
/// (ca, cert, key).
fn certificate(
    dir: &std::path::Path,
    name: &str,
    from: i64,
    until: i64,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec![name.to_string()]).unwrap();
    leaf.not_before = now + time::Duration::days(from);
    leaf.not_after = now + time::Duration::days(until);
    let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// Serves `cert`/`key` on loopback and connects to it trusting `ca`,
/// asking for `name`; the client's error.
async fn refusal(dir: &std::path::Path, name: &str, from: i64, until: i64) -> NetError {
    let (ca, cert, key) = certificate(dir, name, from, until);
    let (lab, _rx) = Lab::new(64);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let wish = ServerWish {
        cert: Some((cert, key)),
        alpn: Vec::new(),
    };
    let srv = lab
        .serve_tls(any, 16, Some("srv"), ServeMode::Task, &wish)
        .unwrap();
    let to = srv.local.unwrap();
    let client = ClientWish {
        sni: Some("localhost".to_string()),
        alpn: Vec::new(),
        trust: Trust::File(ca),
    };
    lab.dial_tls(to, "localhost", Some("cli"), None, &client)
        .await
        .expect_err("the handshake must fail")
}

#[tokio::test]
async fn an_expired_certificate_is_refused_as_expired() {
    let dir = tempfile::tempdir().unwrap();
    let e = refusal(dir.path(), "localhost", -30, -1).await;
    let text = e.to_string();
    assert!(text.contains("TLS handshake failed: expired"), "{text}");
    assert!(text.contains("rustls:"), "{text}");
}

#[tokio::test]
async fn a_certificate_not_yet_valid_is_refused_so() {
    let dir = tempfile::tempdir().unwrap();
    let e = refusal(dir.path(), "localhost", 1, 30).await;
    assert!(e.to_string().contains("not yet valid"), "{e}");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_name_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let e = refusal(dir.path(), "example.org", -1, 30).await;
    assert!(e.to_string().contains("name mismatch"), "{e}");
}

/// A peer that finishes its handshake, sends a little, then garbage
/// instead of TLS records: the stream fails with one event that says so,
/// after the data that came before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_handshake_fails_the_stream_in_words() {
    use std::io::Write;

    use rustls::pki_types::pem::PemObject;
    use socklab_net::Event;

    let (lab, mut rx) = Lab::new(64);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let srv = lab
        .serve_tls(
            any,
            16,
            Some("srv"),
            ServeMode::Task,
            &ServerWish::default(),
        )
        .unwrap();
    let to = srv.local.unwrap();
    let (pem, _) = lab.session_ca().unwrap();
    let ca = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        let mut sock = std::net::TcpStream::connect(to).unwrap();
        let name = "localhost".try_into().unwrap();
        let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        tls.write_all(b"hi").unwrap();
        tls.flush().unwrap();
        sock.write_all(b"this is not a TLS record at all").unwrap();
        // Held open until the server has said what it saw.
        let _ = done_rx.recv_timeout(std::time::Duration::from_secs(10));
    });
    let mut seen = Vec::new();
    let failed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(ev) = rx.recv().await {
            if let Event::Failed { socket, error } = &ev {
                if &**socket == "srv.1" {
                    return error.to_string();
                }
            }
            seen.push(format!("{ev:?}"));
        }
        String::new()
    })
    .await
    .unwrap_or_else(|_| panic!("no failure reported; saw {seen:?}"));
    let _ = done_tx.send(());
    client.join().unwrap();
    assert!(failed.contains("TLS: not TLS"), "{failed}");
    assert!(
        seen.iter()
            .any(|e| e.contains("Data") && e.contains("srv.1")),
        "the data before the garbage was reported first: {seen:?}"
    );
}
