//! The TLS kind of tube: a rustls session over a TCP connection. The
//! connection stays a `Conn` (its addresses, kernel state and goodbye are
//! TCP's); only its tube's wire changes, from the bare stream to
//! [`TlsWire`], which moves plaintext in and records out.
//!
//! Also here: the handshake (driven by hand over the TCP stream, under a
//! deadline), the configurations `connect … tls` and `listen … tls` build,
//! the session's generated certificate, the facts a handshake leaves
//! ([`TlsFacts`]), and why a handshake failed, in a learner's words
//! ([`TlsError`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, Connection,
    DigitallySignedStruct, RootCertStore, ServerConfig, ServerConnection, SignatureScheme,
};
use tokio::net::TcpStream;

use crate::conn::TcpWire;
use crate::model::{CertFacts, Side, TlsError, TlsFacts};
use crate::readbuf::Source;
use crate::settle::lock;
use crate::tube::{Wire, READ_CHUNK};

/// How long a handshake may take when the command names no limit (a
/// peer that never answers, or answers something else than TLS).
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// The most plaintext rustls buffers for us before it is encrypted and
/// written (a bound on memory whatever the peer does).
const BUFFER_LIMIT: usize = 64 * 1024;
/// The most bytes of a certificate file read (a file that is not one is
/// refused before it fills memory).
const MAX_PEM: u64 = 1 << 20;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// ----- facts ---------------------------------------------------------------

/// The facts of a DER certificate; what cannot be parsed says so.
fn cert_facts(der: &[u8]) -> CertFacts {
    let fingerprint = fingerprint(der);
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let day = |t: &x509_parser::time::ASN1Time| {
                let d = t.to_datetime();
                format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
            };
            CertFacts {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                not_before: day(&cert.validity().not_before),
                not_after: day(&cert.validity().not_after),
                fingerprint,
            }
        }
        Err(_) => CertFacts {
            subject: "(unreadable certificate)".to_string(),
            issuer: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            fingerprint,
        },
    }
}

/// SHA-256 of `der` as `AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What the handshake of `conn` agreed.
fn facts_of(conn: &Connection, side: Side) -> TlsFacts {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => "?".to_string(),
    };
    let suite = conn
        .negotiated_cipher_suite()
        .map_or("?".to_string(), |s| format!("{:?}", s.suite()));
    let alpn = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let sni = match conn {
        Connection::Server(s) => s.server_name().map(str::to_string),
        Connection::Client(_) => None,
    };
    let peer_cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| cert_facts(c));
    TlsFacts {
        side,
        version,
        suite,
        alpn,
        sni,
        peer_cert,
    }
}

// ----- errors --------------------------------------------------------------

impl TlsError {
    /// A rustls error in a learner's words, the rustls text kept.
    pub(crate) fn of(e: &rustls::Error) -> TlsError {
        use rustls::Error as E;
        let what = match e {
            E::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => "unknown issuer: the peer's certificate is not signed by any CA we trust (self-signed? trust its CA with `ca FILE`, or skip the check with `insecure`)".to_string(),
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => "name mismatch: the certificate is not for the name we asked for (`sni NAME` sets that name)".to_string(),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired: the certificate's validity ended".to_string(),
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "not yet valid: the certificate's validity has not begun (or a clock is wrong)".to_string(),
                CertificateError::BadEncoding => "bad certificate: the peer sent a certificate that cannot be read".to_string(),
                CertificateError::BadSignature => "bad signature: the certificate is not signed by the key of its issuer".to_string(),
                CertificateError::Revoked => "revoked: the certificate was withdrawn by its issuer".to_string(),
                _ => "the peer's certificate was refused".to_string(),
            },
            E::PeerIncompatible(_) => "no shared protocol: the two ends have no TLS version, cipher suite or key exchange in common".to_string(),
            E::NoApplicationProtocol => "no shared application protocol: none of the ALPN protocols offered is one the other end speaks".to_string(),
            E::AlertReceived(a) => match a {
                AlertDescription::ProtocolVersion | AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity => "no shared protocol: the peer found no TLS version or cipher suite in common and said so".to_string(),
                AlertDescription::NoApplicationProtocol => "no shared application protocol: the peer speaks none of the ALPN protocols offered".to_string(),
                AlertDescription::UnknownCA | AlertDescription::BadCertificate | AlertDescription::CertificateUnknown => "the peer refused our certificate (it does not trust its issuer)".to_string(),
                AlertDescription::CertificateExpired => "the peer refused our certificate: expired".to_string(),
                AlertDescription::UnrecognisedName => "the peer has no certificate for the name we asked for (SNI)".to_string(),
                other => format!("the peer ended the handshake with the alert {other:?}"),
            },
            E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => "not TLS: the peer sent bytes that are not a TLS handshake (a plain-text server? the wrong port?)".to_string(),
            E::PeerMisbehaved(_) => "the peer broke the TLS protocol".to_string(),
            E::DecryptError => "decryption failed: the peer's records do not decrypt (a corrupted stream)".to_string(),
            _ => "the handshake failed".to_string(),
        };
        TlsError::new(what, format!("rustls: {e}"))
    }

    fn io(e: &io::Error) -> TlsError {
        TlsError::new("the connection failed during the handshake", e.to_string())
    }

    fn closed() -> TlsError {
        TlsError::new(
            "the peer closed the connection during the handshake (it does not speak TLS here, or refused us)",
            "end of stream before the handshake finished",
        )
    }

    fn timed_out(after: Duration) -> TlsError {
        TlsError::new(
            format!("no handshake within {}s: the peer does not answer in TLS (a plain-text server? a client that never sent its hello?)", after.as_secs_f32()),
            "timed out",
        )
    }

    fn config(what: impl Into<String>, e: impl fmt::Display) -> TlsError {
        TlsError::new(what, e.to_string())
    }
}

// ----- configurations ------------------------------------------------------

/// How a client checks the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Trust {
    /// The system's CA store.
    #[default]
    System,
    /// The CA certificates in this PEM file.
    File(std::path::PathBuf),
    /// This session's generated CA (a client of the session's own servers).
    Session,
    /// No check at all (`insecure`): anyone can pretend to be the server.
    Insecure,
}

/// What `connect … tls` and `starttls` on a client ask for.
#[derive(Debug, Clone, Default)]
pub struct ClientWish {
    /// The name sent as SNI and checked against the certificate (default:
    /// the host as typed).
    pub sni: Option<String>,
    /// ALPN protocols to offer, in order.
    pub alpn: Vec<String>,
    /// Whom to trust.
    pub trust: Trust,
}

/// What `listen … tls` and `starttls` on a server ask for.
#[derive(Debug, Clone, Default)]
pub struct ServerWish {
    /// A certificate chain and its key, PEM files; `None`: the session's
    /// generated certificate.
    pub cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// ALPN protocols the server speaks, preferred first.
    pub alpn: Vec<String>,
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, TlsError> {
    let f = std::fs::File::open(path)
        .map_err(|e| TlsError::config(format!("cannot read the {what} {}", path.display()), e))?;
    let mut data = Vec::new();
    f.take(MAX_PEM + 1)
        .read_to_end(&mut data)
        .map_err(|e| TlsError::config(format!("cannot read the {what} {}", path.display()), e))?;
    if data.len() as u64 > MAX_PEM {
        return Err(TlsError::new(
            format!("{} is not a {what}", path.display()),
            "over 1 MiB",
        ));
    }
    Ok(data)
}

/// The certificates of a PEM file.
///
/// # Errors
/// Unreadable, or no certificate in it.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = read_pem(path, "certificate file")?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            TlsError::config(
                format!("{} is not a certificate file (PEM)", path.display()),
                e,
            )
        })?;
    if certs.is_empty() {
        return Err(TlsError::new(
            format!(
                "{} is not a certificate file: no BEGIN CERTIFICATE block in it",
                path.display()
            ),
            "no certificate found",
        ));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = read_pem(path, "private key file")?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| {
        TlsError::config(
            format!("{} is not a private key file (PEM: PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", path.display()),
            e,
        )
    })
}

/// A client configuration for `wish`; `session` is the session's CA,
/// trusted when asked.
///
/// # Errors
/// A CA file that cannot be read or holds no certificate.
pub(crate) fn client_config(
    wish: &ClientWish,
    session: Option<&SessionCert>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::config("no TLS version to offer", e))?;
    let mut config = match &wish.trust {
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCheck(provider())))
            .with_no_client_auth(),
        trust => {
            let mut roots = RootCertStore::empty();
            match trust {
                Trust::File(path) => {
                    for c in load_certs(path)? {
                        roots.add(c).map_err(|e| {
                            TlsError::config(
                                format!(
                                    "{} holds a certificate that cannot be a CA",
                                    path.display()
                                ),
                                e,
                            )
                        })?;
                    }
                }
                Trust::Session => {
                    if let Some(s) = session {
                        let _ = roots.add(s.ca.clone());
                    }
                }
                _ => {
                    let found = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(found.certs);
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    config.alpn_protocols = wish.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

/// A server configuration for `wish`; `session` supplies the certificate
/// when the wish names none.
///
/// # Errors
/// A certificate or key file that is not one, or a key that does not fit.
pub(crate) fn server_config(
    wish: &ServerWish,
    session: Option<&SessionCert>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let (chain, key) = match (&wish.cert, session) {
        (Some((cert, key)), _) => (load_certs(cert)?, load_key(key)?),
        (None, Some(session)) => (
            vec![session.leaf.clone(), session.ca.clone()],
            session.key.clone_key(),
        ),
        (None, None) => {
            return Err(TlsError::new(
                "a TLS server needs a certificate",
                "no certificate",
            ))
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::config("no TLS version to offer", e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            TlsError::config(
                "the certificate and key do not make a server identity (does the key belong to the certificate?)",
                e,
            )
        })?;
    config.alpn_protocols = wish.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

/// The server name a client asks for: `sni`, else the host it connects to.
///
/// # Errors
/// Not a DNS name or an IP address.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_string()).map_err(|e| {
        TlsError::config(
            format!("'{name}' is not a server name (a DNS name or an IP address)"),
            e,
        )
    })
}

/// A fresh client session.
pub(crate) fn client(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
) -> Result<Connection, TlsError> {
    ClientConnection::new(config, name)
        .map(Connection::Client)
        .map_err(|e| TlsError::of(&e))
}

/// A fresh server session.
pub(crate) fn server(config: Arc<ServerConfig>) -> Result<Connection, TlsError> {
    ServerConnection::new(config)
        .map(Connection::Server)
        .map_err(|e| TlsError::of(&e))
}

/// Accepts any server certificate (`insecure`), still checking that the
/// handshake's signatures are made by the certificate's key.
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// ----- the session's certificate -------------------------------------------

/// The certificate a session's TLS servers use when given none: a CA of
/// its own and a leaf for `localhost`, 127.0.0.1 and ::1 that it signed,
/// made at first use and gone with the session.
pub struct SessionCert {
    /// The session's CA certificate (what a client must trust).
    ca: CertificateDer<'static>,
    /// The CA in PEM, for `certout FILE` (`curl --cacert FILE`).
    pub ca_pem: String,
    /// The server's certificate.
    leaf: CertificateDer<'static>,
    /// Its key.
    key: PrivateKeyDer<'static>,
    /// SHA-256 of the server's certificate.
    pub fingerprint: String,
}

impl SessionCert {
    /// Makes a new CA and server certificate, valid from an hour ago for
    /// 30 days.
    ///
    /// # Errors
    /// Key generation or signing failed.
    pub(crate) fn generate() -> Result<SessionCert, TlsError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let fail = |e: rcgen::Error| TlsError::config("cannot make the session's certificate", e);
        let now = time::OffsetDateTime::now_utc();
        let (from, until) = (
            now - time::Duration::hours(1),
            now + time::Duration::days(30),
        );
        let ca_key = KeyPair::generate().map_err(fail)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "socklab session CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        (ca_params.not_before, ca_params.not_after) = (from, until);
        let ca = ca_params.self_signed(&ca_key).map_err(fail)?;
        let key = KeyPair::generate().map_err(fail)?;
        let names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        let mut params = CertificateParams::new(names).map_err(fail)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        (params.not_before, params.not_after) = (from, until);
        let leaf = params.signed_by(&key, &ca, &ca_key).map_err(fail)?;
        let leaf_der = leaf.der().clone();
        Ok(SessionCert {
            ca_pem: ca.pem(),
            ca: ca.der().clone(),
            fingerprint: fingerprint(&leaf_der),
            leaf: leaf_der,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}

// ----- the handshake -------------------------------------------------------

/// A TCP stream as `Read`/`Write` that never blocks (WouldBlock instead).
struct NonBlocking<'a>(&'a TcpStream);

impl Read for NonBlocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for NonBlocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs the handshake of `conn` over `stream` until it is done, within
/// `limit`. `early` are bytes of the peer's first flight already read off
/// the stream (a STARTTLS client's hello that a reader took as data).
/// Returns the session and what it agreed.
///
/// # Errors
/// The peer refused, broke the protocol, closed, or said nothing in time.
pub(crate) async fn handshake(
    stream: &TcpStream,
    mut conn: Connection,
    early: &[u8],
    side: Side,
    limit: Duration,
) -> Result<(Connection, TlsFacts), TlsError> {
    conn.set_buffer_limit(Some(BUFFER_LIMIT));
    let mut early = early;
    while !early.is_empty() {
        if conn.read_tls(&mut early).is_err() {
            break;
        }
        if let Err(e) = conn.process_new_packets() {
            let _ = flush_now(stream, &mut conn);
            return Err(TlsError::of(&e));
        }
    }
    let run = async {
        loop {
            while conn.wants_write() {
                stream.writable().await.map_err(|e| TlsError::io(&e))?;
                match conn.write_tls(&mut NonBlocking(stream)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(TlsError::io(&e)),
                }
            }
            if !conn.is_handshaking() {
                return Ok(());
            }
            stream.readable().await.map_err(|e| TlsError::io(&e))?;
            match conn.read_tls(&mut NonBlocking(stream)) {
                Ok(0) => return Err(TlsError::closed()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(TlsError::io(&e)),
            }
            if let Err(e) = conn.process_new_packets() {
                // The alert that says why goes to the peer, best effort.
                let _ = flush_now(stream, &mut conn);
                if !conn.is_handshaking() {
                    // The handshake was done: what broke came after it,
                    // in the same read, perhaps after data. The session
                    // keeps the error; the stream reports it once that
                    // data has been read.
                    return Ok(());
                }
                return Err(TlsError::of(&e));
            }
        }
    };
    match tokio::time::timeout(limit, run).await {
        Ok(Ok(())) => {
            let facts = facts_of(&conn, side);
            Ok((conn, facts))
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(TlsError::timed_out(limit)),
    }
}

/// Writes what rustls has to send, as far as the socket takes it now.
fn flush_now(stream: &TcpStream, conn: &mut Connection) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(&mut NonBlocking(stream))?;
    }
    Ok(())
}

/// Makes `conn` carry the TLS `session` (its handshake done over the
/// connection's stream) from now on.
///
/// # Errors
/// It carries TLS already.
pub(crate) fn upgrade(
    conn: &crate::conn::Conn,
    session: Connection,
    facts: TlsFacts,
) -> crate::error::Result<()> {
    conn.upgrade(|tcp| Arc::new(TlsWire::new(tcp, session)), facts)
}

// ----- the wire ------------------------------------------------------------

/// A rustls session and what it saw.
struct Session {
    /// The session.
    conn: Connection,
    /// The peer ended its side (close_notify, or the TCP end of stream):
    /// our close sends no close_notify back to a socket that is gone.
    peer_done: bool,
    /// The peer broke the protocol: reported once the plaintext that came
    /// before the break has been read.
    broken: Option<rustls::Error>,
}

/// A TLS session over a TCP connection's stream, as a wire: reads give
/// plaintext, writes are encrypted. The session sits behind a lock held
/// only inside a poll.
pub(crate) struct TlsWire {
    /// The TCP stream (shared with the connection, which owns it).
    tcp: Arc<TcpWire>,
    /// The session.
    session: Mutex<Session>,
}

impl TlsWire {
    /// A wire over `tcp` for a session whose handshake is done.
    pub(crate) fn new(tcp: Arc<TcpWire>, conn: Connection) -> TlsWire {
        TlsWire {
            tcp,
            session: Mutex::new(Session {
                conn,
                peer_done: false,
                broken: None,
            }),
        }
    }

    fn stream(&self) -> io::Result<Arc<TcpStream>> {
        self.tcp
            .stream()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    /// Writes out what rustls holds, registering for writability.
    fn poll_send_tls(
        cx: &mut Context<'_>,
        stream: &TcpStream,
        conn: &mut Connection,
    ) -> Poll<io::Result<()>> {
        while conn.wants_write() {
            ready!(stream.poll_write_ready(cx))?;
            match conn.write_tls(&mut NonBlocking(stream)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn tls_error(e: rustls::Error) -> io::Error {
    let shown = TlsError::of(&e);
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {shown}"))
}

impl Source for TlsWire {
    fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        let stream = self.stream()?;
        let mut s = lock(&self.session);
        let mut chunk = [0u8; READ_CHUNK];
        let want = max.min(READ_CHUNK);
        loop {
            match s.conn.reader().read(&mut chunk[..want]) {
                Ok(n) => {
                    if n == 0 {
                        s.peer_done = true;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The TCP stream ended without close_notify: an end of
                // stream all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    s.peer_done = true;
                    return Poll::Ready(Ok(0));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
            // A break the handshake met after it was done is kept in the
            // session (rustls says it again).
            if s.broken.is_none() {
                if let Err(e) = s.conn.process_new_packets() {
                    s.broken = Some(e);
                }
            }
            // Everything that came before a break was read: now the break.
            if let Some(e) = s.broken.clone() {
                return Poll::Ready(Err(tls_error(e)));
            }
            // Whatever the session has to say (a key update's answer, an
            // alert) goes out as far as the socket takes it now.
            let _ = flush_now(&stream, &mut s.conn);
            ready!(stream.poll_read_ready(cx))?;
            match s.conn.read_tls(&mut NonBlocking(&stream)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
            if let Err(e) = s.conn.process_new_packets() {
                let _ = flush_now(&stream, &mut s.conn);
                s.broken = Some(e);
            }
        }
    }
}

impl Wire for TlsWire {
    fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let stream = self.stream()?;
        let mut s = lock(&self.session);
        ready!(Self::poll_send_tls(cx, &stream, &mut s.conn))?;
        let n = s.conn.writer().write(data)?;
        // Sent as far as the socket takes it; the rest with the next write
        // or the flush.
        let _ = Self::poll_send_tls(cx, &stream, &mut s.conn)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream = self.stream()?;
        let mut s = lock(&self.session);
        Self::poll_send_tls(cx, &stream, &mut s.conn)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            let stream = self.stream()?;
            let mut s = lock(&self.session);
            s.conn.send_close_notify();
            let _ = flush_now(&stream, &mut s.conn);
        }
        self.tcp.shutdown(how)
    }

    fn close(&self) {
        if let Ok(stream) = self.stream() {
            let mut s = lock(&self.session);
            if !s.peer_done {
                s.conn.send_close_notify();
                let _ = flush_now(&stream, &mut s.conn);
            }
        }
        self.tcp.close();
    }
}
