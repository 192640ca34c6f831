//! TLS against the real programs engineers use today: socklab's client
//! against `openssl s_server` and `ncat --ssl`, `curl` and `openssl
//! s_client` against socklab's server, refused certificates, and hostile
//! peers (garbage, silence, files that are not certificates). A missing
//! tool fails the test and names the tool: nothing here is skipped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{free_port, need, run_script, Reaped, Run};

/// Starts `cmd`, then waits (at most 10 s) until a line of its stdout or
/// stderr contains `ready`.
fn start(cmd: &mut Command, ready: &str) -> Reaped {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the peer program starts");
    let (tx, rx) = mpsc::channel();
    for out in [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let (tx, ready) = (tx.clone(), ready.to_string());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if line.contains(&ready) {
                    let _ = tx.send(());
                }
            }
        });
    }
    let peer = Reaped(child);
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("the peer program never said {ready:?}"));
    peer
}

/// A self-signed certificate and key for `localhost` and 127.0.0.1, made
/// by openssl in `dir`.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    need("openssl");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=socklab test server"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl req made no certificate");
    (cert, key)
}

fn check(run: &Run, wanted: &[&str]) {
    let all = format!("{}\n{}", run.stdout, run.stderr);
    for w in wanted {
        assert!(all.contains(w), "missing {w:?} in:\n{all}");
    }
}

#[test]
fn socklab_client_against_openssl_s_server_and_refused_certificates() {
    need("openssl");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (cert, key) = self_signed(dir.path());
    let port = free_port();
    let _server = start(
        Command::new("openssl")
            .args(["s_server", "-www", "-alpn", "h2,http/1.1"])
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key),
        "ACCEPT",
    );
    let cert = cert.display();
    let run = run_script(
        &format!(
            "!connect 127.0.0.1 {port} tls as stranger\n\
             !connect 127.0.0.1 {port} tls ca {cert} sni other.example as wrong\n\
             connect 127.0.0.1 {port} tls ca {cert} alpn h2 as c\n\
             send c \"GET / HTTP/1.0\\r\\n\\r\\n\"\n\
             expect c \"200 ok\"\n\
             close c\n"
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    check(
        &run,
        &[
            "stranger: TLS handshake failed: unknown issuer",
            "UnknownIssuer",
            "wrong: TLS handshake failed: name mismatch",
            "c: TLS: TLS 1.3",
            "ALPN h2",
            "server certificate CN=socklab test server, issued by CN=socklab test server",
            "SHA-256 ",
        ],
    );
}

#[test]
fn socklab_client_against_ncat_ssl() {
    need("ncat");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (cert, key) = self_signed(dir.path());
    let port = free_port();
    let _server = start(
        Command::new("ncat")
            .args(["-v", "--ssl", "--ssl-cert"])
            .arg(&cert)
            .arg("--ssl-key")
            .arg(&key)
            .args(["-l", "127.0.0.1", &port.to_string(), "--exec", "/bin/cat"]),
        "Listening on",
    );
    let run = run_script(
        &format!(
            "connect localhost {port} tls ca {} as c\n\
             send c \"ping over TLS\\n\"\n\
             expect c \"ping over TLS\"\n\
             close c\n",
            cert.display()
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    check(
        &run,
        &[
            "c: TLS: TLS 1.",
            "server certificate CN=socklab test server",
        ],
    );
}

#[test]
fn curl_trusts_a_socklab_server_through_certout() {
    need("curl");
    let run = run_script(
        "listen 0 tls certout {tmp}/ca.pem as web\n\
         exec curl -sS --cacert {tmp}/ca.pem https://localhost:{web.port}/hello as curl\n\
         accept web\n\
         expect web.1 \"GET /hello HTTP/1.1\"\n\
         send web.1 \"HTTP/1.0 200 OK\\r\\nContent-Length: 14\\r\\n\\r\\nhello from TLS\"\n\
         close web.1\n\
         expect curl \"hello from TLS\"\n\
         close curl\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    check(
        &run,
        &[
            "the CA is in {tmp}/ca.pem",
            "web.1: TLS: TLS 1.3",
            "SNI localhost",
            "no client certificate",
            "curl: exited with status 0",
        ],
    );
}

#[test]
fn openssl_s_client_against_a_socklab_server() {
    need("openssl");
    let run = run_script(
        "listen 0 tls as web\n\
         tls export {tmp}/ca.pem\n\
         exec openssl s_client -connect 127.0.0.1:{web.port} -CAfile {tmp}/ca.pem -servername localhost -verify_return_error -quiet as sc\n\
         accept web\n\
         send web.1 \"hello from socklab\\n\"\n\
         expect sc \"hello from socklab\"\n\
         send sc \"hi from s_client\\n\"\n\
         expect web.1 \"hi from s_client\"\n\
         close web.1\n\
         close sc\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    check(
        &run,
        &["web.1: TLS: TLS 1.3", "SNI localhost", "verify return:1"],
    );
}

#[test]
fn a_peer_that_answers_garbage_or_nothing_gets_one_clear_line() {
    need("ncat");
    let garbage = free_port();
    let _talker = start(
        Command::new("ncat")
            .args(["-v", "-k", "-l", "127.0.0.1", &garbage.to_string()])
            .args(["--sh-exec", "printf 'SSH-2.0-OpenSSH_9.2\\r\\n'; sleep 5"]),
        "Listening on",
    );
    let silent = free_port();
    let _mute = start(
        Command::new("ncat")
            .args(["-v", "-k", "-l", "127.0.0.1", &silent.to_string()])
            .args(["--sh-exec", "sleep 5"]),
        "Listening on",
    );
    let run = run_script(
        &format!(
            "!connect 127.0.0.1 {garbage} tls insecure as g\n\
             !connect 127.0.0.1 {silent} tls insecure timeout 1s as s\n"
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    check(
        &run,
        &[
            "g: TLS handshake failed: not TLS",
            "s: TLS handshake failed: no handshake within 1s",
        ],
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn a_client_that_sends_garbage_or_nothing_holds_up_no_other_client() {
    need("python3");
    let run = run_script(
        "listen 0 tls as web\n\
         connect web as silent\n\
         exec python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', {web.port})); s.sendall(b'GET / HTTP/1.0 garbage'); s.recv(100)\" as garbage\n\
         close garbage\n\
         connect web tls ca session as ok\n\
         send ok ping\n\
         close ok\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    check(
        &run,
        &[
            "web !! TLS handshake with",
            "failed: not TLS",
            "web: accepted web.1 from",
            "web.1 <- 4 bytes \"ping\"",
        ],
    );
}

#[test]
fn files_that_are_not_certificates_or_keys_are_refused_in_one_line() {
    need("openssl");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (cert, _) = self_signed(dir.path());
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, vec![b'x'; 2 << 20]).expect("write junk");
    let run = run_script(
        &format!(
            "!listen 0 tls cert {cert} key {junk}\n\
             !listen 0 tls cert {junk} key {cert}\n\
             !connect 127.0.0.1 9 tls ca {junk}\n",
            cert = cert.display(),
            junk = junk.display()
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    check(
        &run,
        &["is not a private key file", "is not a certificate file"],
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn trace_shows_the_tcp_segments_under_tls() {
    let run = run_script(
        "listen 0 tls as web\n\
         trace on\n\
         connect web tls ca session as cli\n\
         send cli hi\n\
         close cli\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    if run.stdout.contains("trace: capturing") {
        // The handshake's records and the application data cross as TCP
        // segments with a payload, the close_notify before the FIN.
        check(
            &run,
            &[
                "cli -> web.1 [SYN] seq=0",
                "web.1 -> cli [SYN,ACK]",
                "cli -> web.1 [PSH,ACK] seq=1 ack=1",
                "cli -> web.1 [FIN,ACK]",
            ],
        );
    } else {
        check(&run, &["trace: observing", "cli: ", "ESTABLISHED"]);
    }
}

#[test]
fn a_server_that_speaks_only_tls_1_1_has_no_protocol_in_common() {
    need("openssl");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (cert, key) = self_signed(dir.path());
    let port = free_port();
    let _server = start(
        Command::new("openssl")
            .args([
                "s_server",
                "-www",
                "-tls1_1",
                "-cipher",
                "DEFAULT@SECLEVEL=0",
            ])
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key),
        "ACCEPT",
    );
    let run = run_script(
        &format!(
            "!connect localhost {port} tls ca {} as old\n",
            cert.display()
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    check(
        &run,
        &[
            "old: TLS handshake failed: no shared protocol",
            "ProtocolVersion",
        ],
    );
}

/// STARTTLS with a real client: `openssl s_client -starttls smtp` speaks
/// plain SMTP to a socklab server, asks for STARTTLS, and the handshake
/// that follows starts with a hello the server's reader may have taken
/// already: no byte of it may be lost.
#[test]
fn openssl_s_client_starttls_smtp_against_a_socklab_server() {
    need("openssl");
    let run = run_script(
        "listen 0 as mail\n\
         tls export {tmp}/ca.pem\n\
         exec openssl s_client -starttls smtp -connect 127.0.0.1:{mail.port} -CAfile {tmp}/ca.pem -servername localhost -verify_return_error -quiet as sc\n\
         accept mail\n\
         send mail.1 \"220 socklab ESMTP\\r\\n\"\n\
         expect mail.1 /EHLO [^\\r]*\\r\\n/\n\
         send mail.1 \"250-socklab\\r\\n250 STARTTLS\\r\\n\"\n\
         expect mail.1 \"STARTTLS\\r\\n\"\n\
         send mail.1 \"220 go ahead\\r\\n\"\n\
         starttls mail.1\n\
         send mail.1 \"250 secret hello\\r\\n\"\n\
         expect sc \"secret hello\"\n\
         send sc \"QUIT\\r\\n\"\n\
         expect mail.1 \"QUIT\"\n\
         close mail.1\n\
         close sc\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    check(
        &run,
        &["mail.1: TLS: TLS 1.3", "SNI localhost", "verify return:1"],
    );
}
