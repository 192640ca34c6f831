//! TLS: `connect … tls`, `listen … tls`, `starttls`, and `tls export`.
//! `connect` and `listen` come here first; without the word `tls` they are
//! the plain commands of `sockets`.

use std::path::PathBuf;

use socklab_net::{ClientWish, ServeMode, ServerWish, Trust};

use super::common::{socket_arg, target};
use super::sockets;
use crate::args::{host_port, number_of, Args, CmdError, CmdResult, Exit};
use crate::parse::Token;
use crate::render;
use crate::session::Session;

/// The options whose value could be the word `tls` (a name, a file).
const VALUED: &[&str] = &[
    "as", "sni", "alpn", "ca", "cert", "key", "certout", "timeout", "backlog", "mode",
];

/// `connect HOST PORT tls [sni NAME] [alpn P,…] [ca FILE|session | insecure]
/// [as NAME] [timeout DUR]`, else the plain `connect`.
pub async fn connect(s: &mut Session, mut a: Args) -> CmdResult {
    if !a.has_keyword("tls", VALUED) {
        return sockets::connect(s, a).await;
    }
    a.keyword_anywhere("tls");
    let limit = a.timeout()?.or(s.wait_limit);
    let name = a.as_name()?;
    let wish = client_wish(&mut a)?;
    if let Some(w) = a.peek_word() {
        if s.lab
            .info(w)
            .is_ok_and(|i| i.role != socklab_net::Role::Listener)
        {
            return Err(CmdError::usage(format!(
                "{w} is a socket already: `starttls {w}` makes an existing connection TLS"
            )));
        }
    }
    // The host as typed is the name the certificate is checked against
    // (a listener of this shell: its address).
    let host = if a.len() == 2 {
        a.peek_word().map(str::to_string)
    } else {
        None
    };
    let to = target(s, &mut a).await?;
    let host = host.unwrap_or_else(|| to.ip().to_string());
    a.done()?;
    let lab = s.lab.clone();
    let info = lab
        .dial_tls(to, &host, name.as_deref(), limit, &wish)
        .await
        .map_err(|e| refused(s, e))?;
    let peer = info.peer.map(|p| render::addr(&p)).unwrap_or_default();
    let local = info.local.map(|p| render::addr(&p)).unwrap_or_default();
    s.say(format!(
        "{}: connected to {peer} from {local}, TLS handshake done",
        info.name
    ));
    if let Some(f) = &info.tls {
        s.say(render::tls_facts(&info.name, f));
    }
    Ok(())
}

/// `listen [HOST] PORT tls [cert FILE key FILE] [certout FILE] [alpn P,…]
/// [backlog N] [mode iterative|task] [as NAME]`, else the plain `listen`.
pub async fn listen(s: &mut Session, mut a: Args) -> CmdResult {
    if !a.has_keyword("tls", VALUED) {
        return sockets::listen(s, a).await;
    }
    a.keyword_anywhere("tls");
    let name = a.as_name()?;
    let wish = server_wish(&mut a)?;
    let certout = a.option("certout", "a file to write the session's CA certificate to")?;
    if let (Some(t), Some(_)) = (&certout, &wish.cert) {
        return Err(CmdError::at(
            t.span,
            "certout writes the session's generated CA; with `cert FILE` you have your own",
        ));
    }
    let how = match a.option("mode", "iterative or task")? {
        Some(t) => t
            .word()
            .and_then(|w| w.parse::<ServeMode>().ok())
            .ok_or_else(|| CmdError::at(t.span, "a server's mode is iterative, thread or task"))?,
        None => ServeMode::Task,
    };
    let backlog = match a.option("backlog", "a number")? {
        Some(t) => number_of(&t, "a backlog", 0..=65535)? as i32,
        None => 1024,
    };
    let (addr, pt) = host_port(&mut a).await?;
    a.done()?;
    // The CA file first: a server whose CA could not be written is no use
    // to the program that was to trust it.
    if let Some(t) = &certout {
        let (pem, _) = s.lab.session_ca()?;
        write_pem(s, &path_of(t), &pem, t)?;
    }
    let info = s
        .lab
        .serve_tls(addr, backlog, name.as_deref(), how, &wish)
        .map_err(|e| refused(s, e).os_at(pt.span))?;
    let local = info.local.map(|l| render::addr(&l)).unwrap_or_default();
    let picked = super::sockets::port_note(addr.port(), info.local);
    s.say(format!(
        "{}: listening on {local}{picked}, TLS; clients become {}.1, {}.2, … once their handshake is done",
        info.name, info.name, info.name
    ));
    if how == ServeMode::Iterative {
        s.say(format!(
            "   iterative: one client at a time; the next waits in the backlog until `close {}.N`",
            info.name
        ));
    }
    if wish.cert.is_none() {
        let (_, fingerprint) = s.lab.session_ca()?;
        s.say(format!(
            "   certificate: this session's own, for localhost, 127.0.0.1 and ::1, signed by \"socklab session CA\"; SHA-256 {fingerprint}"
        ));
        match certout {
            Some(t) => {
                let path = path_of(&t);
                s.say(format!(
                    "   the CA is in {}: `curl --cacert {}`, or `connect … tls ca {}`, trusts this server",
                    s.tmp().path(&path),
                    s.tmp().path(&path),
                    s.tmp().path(&path)
                ));
            }
            None => s.say(format!(
                "   clients must trust the session's CA: `connect {} tls ca session`, or `tls export FILE` for other programs",
                info.name
            )),
        }
    }
    sockets::note_exposure(s, info.local.unwrap_or(addr));
    Ok(())
}

/// `starttls NAME [sni NAME] [alpn P,…] [ca FILE|session | insecure]
/// [cert FILE key FILE] [timeout DUR]`
pub async fn starttls(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let client = client_wish(&mut a)?;
    let mut server = server_wish(&mut a)?;
    server.alpn.clone_from(&client.alpn);
    let name = socket_arg(s, &mut a)?;
    a.done()?;
    let lab = s.lab.clone();
    let ends = lab
        .starttls(&name, &client, &server, limit)
        .await
        .map_err(|e| refused(s, e))?;
    for info in ends {
        if let Some(f) = &info.tls {
            s.say(render::tls_facts(&info.name, f));
        }
    }
    Ok(())
}

/// `tls export FILE`: the session's CA certificate, for other programs to
/// trust (`curl --cacert FILE`, `openssl s_client -CAfile FILE`).
pub async fn tls(s: &mut Session, mut a: Args) -> CmdResult {
    a.choice("what to do", &["export"])?;
    let t = a.token("a file to write the CA certificate to")?;
    a.done()?;
    let (pem, fingerprint) = s.lab.session_ca()?;
    let path = path_of(&t);
    write_pem(s, &path, &pem, &t)?;
    s.say(format!(
        "{}: the session's CA certificate (PEM); it signed the certificate with SHA-256 {fingerprint}",
        s.tmp().path(&path)
    ));
    Ok(())
}

/// `info NAME`'s TLS part: the facts of a TLS stream.
pub fn facts(s: &Session, name: &str) {
    if let Some(f) = s.lab.info(name).ok().and_then(|i| i.tls) {
        s.say(render::tls_facts(name, &f));
    }
}

fn path_of(t: &Token) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&t.bytes()).into_owned())
}

fn write_pem(s: &Session, path: &std::path::Path, pem: &str, t: &Token) -> CmdResult {
    std::fs::write(path, pem).map_err(|e| {
        CmdError::new(Exit::Io, format!("write {}: {e}", s.tmp().path(path))).or_at(t.span)
    })
}

/// The client's options: `sni NAME`, `alpn P,…`, `ca FILE|session`,
/// `insecure`.
fn client_wish(a: &mut Args) -> CmdResult<ClientWish> {
    let sni = match a.option("sni", "a server name")? {
        Some(t) => Some(
            t.word()
                .ok_or_else(|| CmdError::at(t.span, "a server name is a bare word"))?
                .to_string(),
        ),
        None => None,
    };
    let alpn = alpn_of(a)?;
    let ca = a.option("ca", "a CA file (PEM), or session")?;
    let insecure = a.keyword_anywhere("insecure");
    let trust = match (ca, insecure) {
        (Some(t), true) => {
            return Err(CmdError::at(
                t.span,
                "ca and insecure contradict each other: trust a CA, or check nothing",
            ))
        }
        (Some(t), false) if t.word() == Some("session") => Trust::Session,
        (Some(t), false) => Trust::File(path_of(&t)),
        (None, true) => Trust::Insecure,
        (None, false) => Trust::System,
    };
    Ok(ClientWish { sni, alpn, trust })
}

/// The server's options: `cert FILE key FILE`, `alpn P,…` (taken already
/// when the client's took it).
fn server_wish(a: &mut Args) -> CmdResult<ServerWish> {
    let cert = a.option("cert", "a certificate file (PEM)")?;
    let key = a.option("key", "a private key file (PEM)")?;
    let cert = match (cert, key) {
        (Some(c), Some(k)) => Some((path_of(&c), path_of(&k))),
        (None, None) => None,
        (Some(t), None) => {
            return Err(CmdError::at(
                t.span,
                "a certificate needs its key: cert FILE key FILE",
            ))
        }
        (None, Some(t)) => {
            return Err(CmdError::at(
                t.span,
                "a key needs its certificate: cert FILE key FILE",
            ))
        }
    };
    let alpn = alpn_of(a)?;
    Ok(ServerWish { cert, alpn })
}

/// `alpn h2,http/1.1`: at most 16 protocols of 1 to 255 bytes each.
fn alpn_of(a: &mut Args) -> CmdResult<Vec<String>> {
    let Some(t) = a.option("alpn", "protocols like h2,http/1.1")? else {
        return Ok(Vec::new());
    };
    let text = t
        .word()
        .ok_or_else(|| CmdError::at(t.span, "ALPN protocols are words, like h2,http/1.1"))?;
    let protocols: Vec<String> = text.split(',').map(str::to_string).collect();
    if protocols.len() > 16 || protocols.iter().any(|p| p.is_empty() || p.len() > 255) {
        return Err(CmdError::at(
            t.span,
            "ALPN: 1 to 16 protocols, each 1 to 255 bytes, separated by commas",
        ));
    }
    Ok(protocols)
}

/// A failed handshake keeps its words (paths under `{tmp}` written so);
/// an unknown issuer gets the way out.
fn refused(s: &Session, e: socklab_net::NetError) -> CmdError {
    let unknown = matches!(&e, socklab_net::NetError::Handshake { error, .. } if error.what.starts_with("unknown issuer"));
    let mut c = CmdError::from(e);
    c.message = s.tmp().text(&c.message);
    if unknown {
        c.hint("a server of this shell uses the session's CA: `ca session`; another program's self-signed certificate: `ca FILE` with its certificate")
    } else {
        c
    }
}
