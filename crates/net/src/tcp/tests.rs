//! Tests on real loopback sockets: TCP_INFO, the socket table, and the
//! capture (skipped, saying why, when this process may not capture).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use super::capture::open_loopback;
use super::*;

/// The longest any test waits for the kernel.
const LIMIT: Duration = Duration::from_secs(5);

/// A listener on 127.0.0.1 with the given backlog.
fn listener(backlog: i32) -> (TcpListener, SocketAddr) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(backlog).unwrap();
    let listener: TcpListener = socket.into();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A connected pair: (client, server).
fn pair() -> (TcpStream, TcpStream, TcpListener) {
    let (listener, addr) = listener(8);
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server, listener)
}

#[tokio::test]
async fn listener_shows_its_accept_queue() {
    let (listener, addr) = listener(7);
    let info = tcp_info(listener.as_raw_fd()).unwrap();
    assert_eq!(info.state, TcpState::Listen);
    assert_eq!(state_of(listener.as_raw_fd()).unwrap(), TcpState::Listen);
    assert_eq!(info.accept_queue(), Some((0, 7)));
    // A client the program has not accepted yet waits in the queue (the
    // kernel completes the handshake by itself).
    let _client = TcpStream::connect(addr).unwrap();
    let info = wait_info(listener.as_raw_fd(), "one queued client", LIMIT, |i| {
        i.accept_queue() == Some((1, 7))
    })
    .await
    .unwrap();
    let summary = info.summary();
    assert_eq!(summary[0].value, InfoValue::State(TcpState::Listen));
    assert!(summary
        .iter()
        .any(|f| f.name == "accept queue" && f.value == InfoValue::Count(1)));
    assert!(!summary.iter().any(|f| f.name == "rtt"));
}

#[tokio::test]
async fn connected_pair_counts_its_bytes() {
    let (mut client, mut server, _listener) = pair();
    let c = tcp_info(client.as_raw_fd()).unwrap();
    let s = tcp_info(server.as_raw_fd()).unwrap();
    assert_eq!(
        (c.state, s.state),
        (TcpState::Established, TcpState::Established)
    );
    assert!(
        c.snd_mss > 0 && c.pmtu >= c.snd_mss && c.snd_cwnd > 0,
        "{c:?}"
    );
    assert!(c.rto > Duration::ZERO, "{c:?}");
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).unwrap();
    // Settled when the sender has its ACK.
    let c = wait_info(client.as_raw_fd(), "data acknowledged", LIMIT, |i| {
        i.unacked == 0 && i.bytes_acked.is_none_or(|n| n == 6)
    })
    .await
    .unwrap();
    let s = tcp_info(server.as_raw_fd()).unwrap();
    if c.len >= 144 {
        // Sequence space: the SYN counts one.
        assert_eq!(c.bytes_acked, Some(6), "{c:?}");
        assert_eq!(s.bytes_received, Some(5), "{s:?}");
        assert!(c.segs_out.is_some_and(|n| n >= 3), "{c:?}");
    }
    if c.len >= 216 {
        assert_eq!(c.bytes_sent, Some(5), "{c:?}");
        assert_eq!(c.bytes_retrans, Some(0), "{c:?}");
        assert_eq!(c.data_segs_out, Some(1), "{c:?}");
        assert_eq!(s.data_segs_in, Some(1), "{s:?}");
    }
    let names: Vec<&str> = c.summary().iter().map(|f| f.name).collect();
    for name in ["state", "rtt", "rttvar", "cwnd", "mss", "retransmits"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
}

#[tokio::test]
async fn half_close_passes_the_wave_states() {
    let (client, server, _listener) = pair();
    let client_addr = client.local_addr().unwrap();
    let server_addr = server.local_addr().unwrap();
    // The client closes its side first: FIN, then the server's ACK.
    client.shutdown(Shutdown::Write).unwrap();
    let c = wait_state(
        client.as_raw_fd(),
        &[TcpState::FinWait2, TcpState::TimeWait],
        LIMIT,
    )
    .await
    .unwrap();
    let s = wait_state(server.as_raw_fd(), &[TcpState::CloseWait], LIMIT)
        .await
        .unwrap();
    assert_eq!(s, TcpState::CloseWait);
    assert_eq!(
        path(TcpState::Established, c, true),
        [
            TcpState::Established,
            TcpState::FinWait1,
            TcpState::FinWait2
        ]
    );
    assert_eq!(
        path(TcpState::Established, s, false),
        [TcpState::Established, TcpState::CloseWait]
    );
    // The server closes too: the client, which closed first, ends in
    // TIME_WAIT. Its socket is done (CLOSED); the table holds the
    // TIME_WAIT row.
    drop(server);
    wait_state(client.as_raw_fd(), &[TcpState::Close], LIMIT)
        .await
        .unwrap();
    let rows = wait_table("client in TIME_WAIT", LIMIT, |rows| {
        rows.iter().any(|r| {
            r.local == client_addr && r.remote == server_addr && r.state == TcpState::TimeWait
        })
    })
    .await
    .unwrap();
    assert!(!rows.iter().any(|r| r.local == server_addr
        && r.remote == client_addr
        && r.state == TcpState::TimeWait));
}

#[tokio::test]
async fn the_side_that_closes_first_holds_time_wait() {
    let (client, mut server, listener) = pair();
    let client_addr = client.local_addr().unwrap();
    let server_addr = server.local_addr().unwrap();
    drop(client);
    let mut buf = [0u8; 1];
    assert_eq!(server.read(&mut buf).unwrap(), 0, "end of stream");
    drop(server);
    let is_ours = |r: &TableRow| {
        r.state == TcpState::TimeWait && r.local == client_addr && r.remote == server_addr
    };
    // The row appears once the kernel has exchanged both FINs.
    wait_table("client in TIME_WAIT", Duration::from_secs(2), |rows| {
        rows.iter().any(is_ours)
    })
    .await
    .unwrap();
    let rows = time_wait_for(&[server_addr.port()]);
    let row = rows.iter().find(|r| is_ours(r)).unwrap();
    assert_eq!(row.timer.kind, TimerKind::TimeWait);
    assert!(row.timer.expires <= Duration::from_secs(60), "{row:?}");
    assert_eq!(row.inode, 0);
    assert!(
        !rows.iter().any(|r| r.local == server_addr),
        "the server did not close first: {rows:?}"
    );
    // The listener still holds its port; the lingering connection is
    // another row.
    assert!(socket_table()
        .unwrap()
        .iter()
        .any(|r| r.local == listener.local_addr().unwrap() && r.state == TcpState::Listen));
    assert!(time_wait_for(&[]).is_empty());
}

/// Starts a capture of `ports`, or says why it cannot and gives `None`.
fn start_capture(ports: &[u16]) -> Option<(Capture, tokio::sync::mpsc::Receiver<Segment>)> {
    match Capture::start(Arc::new(ports.iter().copied().collect())) {
        Ok(started) => Some(started),
        Err(CaptureError::NotPermitted(e)) => {
            eprintln!("skipped: this process may not capture packets ({e})");
            None
        }
        Err(e) => panic!("capture: {e}"),
    }
}

/// Every segment received so far (call after [`Capture::flush`]).
fn drain(rx: &mut tokio::sync::mpsc::Receiver<Segment>) -> Vec<Segment> {
    let mut out = Vec::new();
    while let Ok(segment) = rx.try_recv() {
        out.push(segment);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_shows_handshake_data_and_wave_once() {
    let (listener, server_addr) = listener(8);
    let Some((capture, mut rx)) = start_capture(&[server_addr.port()]) else {
        return;
    };
    let mut client = TcpStream::connect(server_addr).unwrap();
    let client_addr = client.local_addr().unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).unwrap();
    drop(client);
    assert_eq!(server.read(&mut buf).unwrap(), 0, "end of stream");
    drop(server);
    // Settle: the client holds TIME_WAIT and the server's LAST_ACK is
    // gone, so every segment has crossed; then the capture catches up.
    wait_table("both sides closed", LIMIT, |rows| {
        rows.iter().any(|r| {
            r.local == client_addr && r.remote == server_addr && r.state == TcpState::TimeWait
        }) && !rows
            .iter()
            .any(|r| r.local == server_addr && r.remote == client_addr)
    })
    .await
    .unwrap();
    capture.flush(LIMIT).await.unwrap();
    let segments: Vec<Segment> = drain(&mut rx)
        .into_iter()
        .filter(|s| {
            (s.src, s.dst) == (client_addr, server_addr)
                || (s.src, s.dst) == (server_addr, client_addr)
        })
        .collect();
    let mut rel = Relative::new();
    // (from client, flags, relative seq, relative ack, data length)
    let seen: Vec<(bool, String, u32, Option<u32>, usize)> = segments
        .iter()
        .map(|s| {
            let r = rel.observe(s);
            (
                s.src == client_addr,
                flags_text(s),
                r.seq,
                r.ack,
                s.payload_len,
            )
        })
        .collect();
    let text = format!("{seen:#?}");
    assert!(seen.len() >= 7, "{text}");
    // The handshake, exactly.
    assert_eq!(seen[0], (true, "SYN".into(), 0, None, 0), "{text}");
    assert_eq!(seen[1], (false, "SYN,ACK".into(), 0, Some(1), 0), "{text}");
    assert_eq!(seen[2], (true, "ACK".into(), 1, Some(1), 0), "{text}");
    assert!(
        segments[0].mss.is_some() && segments[1].mss.is_some(),
        "{text}"
    );
    // The data.
    let data = seen
        .iter()
        .position(|s| s.0 && s.4 == 5)
        .unwrap_or_else(|| panic!("no data segment: {text}"));
    assert!(data > 2, "{text}");
    assert_eq!(
        seen[data],
        (true, "PSH,ACK".into(), 1, Some(1), 5),
        "{text}"
    );
    assert_eq!(
        seen.iter().filter(|s| s.4 > 0).count(),
        1,
        "one data segment: {text}"
    );
    // Both sides send a FIN, after the data; the last FIN is ACKed.
    let fin_of = |from_client: bool| {
        seen.iter()
            .position(|s| s.0 == from_client && s.1.contains("FIN"))
            .unwrap_or_else(|| panic!("no FIN from client={from_client}: {text}"))
    };
    let (client_fin, server_fin) = (fin_of(true), fin_of(false));
    assert!(client_fin > data && server_fin > data, "{text}");
    assert_eq!(
        seen[client_fin].2, 6,
        "the client's FIN follows its 5 bytes: {text}"
    );
    assert_eq!(seen[server_fin].2, 1, "the server sent no data: {text}");
    let last_fin = client_fin.max(server_fin);
    let closer_of_last = !seen[last_fin].0;
    let fin_end = seen[last_fin].2 + 1;
    assert!(
        seen[last_fin + 1..]
            .iter()
            .any(|s| s.0 == closer_of_last && s.1.contains("ACK") && s.3 == Some(fin_end)),
        "the last FIN is acknowledged: {text}"
    );
    assert!(!seen.iter().any(|s| s.1.contains("RST")), "{text}");
    // Each frame once: no segment repeats.
    for (i, a) in segments.iter().enumerate() {
        for b in &segments[i + 1..] {
            let key = |s: &Segment| (s.src, s.dst, s.flags, s.seq, s.ack, s.payload_len);
            assert_ne!(key(a), key(b), "duplicate segment: {text}");
        }
    }
    let stats = capture.stats();
    assert!(stats.segments >= segments.len() as u64, "{stats:?}");
    assert_eq!(stats.channel_drops, 0, "{stats:?}");
    assert!(capture.is_running() && capture.failure().is_none());
}

/// Regression test for transcripts that depended on timing: without
/// settling, the server's ACK of the client's FIN may ride on its own FIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_session_gives_an_exact_transcript() {
    let (listener, server_addr) = listener(8);
    let Some((capture, mut rx)) = start_capture(&[server_addr.port()]) else {
        return;
    };
    let mut client = TcpStream::connect(server_addr).unwrap();
    let client_addr = client.local_addr().unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).unwrap();
    wait_info(client.as_raw_fd(), "data acknowledged", LIMIT, |i| {
        i.unacked == 0
    })
    .await
    .unwrap();
    drop(client);
    assert_eq!(server.read(&mut buf).unwrap(), 0, "end of stream");
    wait_table("client FIN acknowledged", LIMIT, |rows| {
        rows.iter()
            .any(|r| r.local == client_addr && r.state == TcpState::FinWait2)
    })
    .await
    .unwrap();
    drop(server);
    wait_table("both sides closed", LIMIT, |rows| {
        rows.iter()
            .any(|r| r.local == client_addr && r.state == TcpState::TimeWait)
            && !rows
                .iter()
                .any(|r| r.local == server_addr && r.remote == client_addr)
    })
    .await
    .unwrap();
    capture.flush(LIMIT).await.unwrap();
    let mut rel = Relative::new();
    let seen: Vec<(&str, String, u32, Option<u32>, usize)> = drain(&mut rx)
        .iter()
        .filter(|s| s.src == client_addr || s.dst == client_addr)
        .map(|s| {
            let r = rel.observe(s);
            let dir = if s.src == client_addr { "c>s" } else { "s>c" };
            (dir, flags_text(s), r.seq, r.ack, s.payload_len)
        })
        .collect();
    let expected: Vec<(&str, String, u32, Option<u32>, usize)> = vec![
        ("c>s", "SYN".into(), 0, None, 0),
        ("s>c", "SYN,ACK".into(), 0, Some(1), 0),
        ("c>s", "ACK".into(), 1, Some(1), 0),
        ("c>s", "PSH,ACK".into(), 1, Some(1), 5),
        ("s>c", "ACK".into(), 1, Some(6), 0),
        ("c>s", "FIN,ACK".into(), 6, Some(1), 0),
        ("s>c", "ACK".into(), 1, Some(7), 0),
        ("s>c", "FIN,ACK".into(), 1, Some(7), 0),
        ("c>s", "ACK".into(), 7, Some(2), 0),
    ];
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_keeps_only_the_ports_in_its_set() {
    let (a, a_addr) = listener(8);
    let (b, b_addr) = listener(8);
    let Some((capture, mut rx)) = start_capture(&[a_addr.port()]) else {
        return;
    };
    let ports_of = |segments: &[Segment]| {
        let mut ports: Vec<u16> = segments
            .iter()
            .flat_map(|s| [s.src.port(), s.dst.port()])
            .filter(|p| *p == a_addr.port() || *p == b_addr.port())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    };
    let _a1 = TcpStream::connect(a_addr).unwrap();
    let _b1 = TcpStream::connect(b_addr).unwrap();
    let _ = (a.accept().unwrap(), b.accept().unwrap());
    capture.flush(LIMIT).await.unwrap();
    let first = drain(&mut rx);
    assert!(!first.is_empty());
    assert_eq!(ports_of(&first), [a_addr.port()]);
    // The set changes while the capture runs.
    assert!(capture.ports().insert(b_addr.port()));
    assert!(capture.ports().remove(a_addr.port()));
    assert_eq!(capture.ports().to_vec(), [b_addr.port()]);
    let _a2 = TcpStream::connect(a_addr).unwrap();
    let _b2 = TcpStream::connect(b_addr).unwrap();
    let _ = (a.accept().unwrap(), b.accept().unwrap());
    capture.flush(LIMIT).await.unwrap();
    let second = drain(&mut rx);
    assert!(!second.is_empty());
    assert_eq!(ports_of(&second), [b_addr.port()]);
    // Flush markers never show as segments.
    let marker = capture.marker_addr();
    assert!(!first
        .iter()
        .chain(&second)
        .any(|s| s.src == marker || s.dst == marker));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_capture_ends_its_channel() {
    let Some((capture, mut rx)) = start_capture(&[]) else {
        return;
    };
    capture.stop();
    let end = tokio::time::timeout(LIMIT, rx.recv()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_after_the_receiver_is_gone_says_stopped() {
    let Some((capture, rx)) = start_capture(&[]) else {
        return;
    };
    drop(rx);
    // The reader notices the closed channel at the next segment of its
    // ports; it sees one on a connection to a port in the set.
    let (listener, addr) = listener(8);
    capture.ports().insert(addr.port());
    let _client = TcpStream::connect(addr).unwrap();
    let _ = listener.accept().unwrap();
    let end = capture.flush(LIMIT).await;
    assert!(matches!(end, Err(CaptureError::Stopped)), "{end:?}");
    assert!(!capture.is_running());
}

#[test]
fn capture_needs_a_runtime() {
    let started = Capture::start(Arc::new(PortSet::new()));
    assert!(matches!(started, Err(CaptureError::NoRuntime)));
}

#[test]
fn capture_without_cap_net_raw_is_not_permitted() {
    /// `struct __user_cap_header_struct`.
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    /// `struct __user_cap_data_struct`.
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_RAW: u32 = 13;
    // Capabilities belong to a thread: drop CAP_NET_RAW in a thread of its
    // own, leaving the other tests' threads alone.
    let outcome = std::thread::spawn(|| {
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut data = [Data::default(); 2];
        // SAFETY: valid header and two data structs, as version 3 wants.
        let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        data[0].effective &= !(1 << CAP_NET_RAW);
        // SAFETY: as above; this changes only the calling thread.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
        if rc != 0 {
            return None;
        }
        Some(open_loopback())
    })
    .join()
    .unwrap();
    match outcome {
        None => eprintln!("skipped: cannot change this thread's capabilities"),
        Some(Err(CaptureError::NotPermitted(e))) => {
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        }
        Some(other) => panic!("expected NotPermitted, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_is_captured_and_listed() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let server_addr = listener.local_addr().unwrap();
    let Some((capture, mut rx)) = start_capture(&[server_addr.port()]) else {
        return;
    };
    let client = TcpStream::connect(server_addr).unwrap();
    let client_addr = client.local_addr().unwrap();
    let (server, _) = listener.accept().unwrap();
    drop(client);
    wait_state(server.as_raw_fd(), &[TcpState::CloseWait], LIMIT)
        .await
        .unwrap();
    drop(server);
    // /proc/net/tcp6 words decode to the right address.
    wait_table("client in TIME_WAIT", LIMIT, |rows| {
        rows.iter().any(|r| {
            r.local == client_addr && r.remote == server_addr && r.state == TcpState::TimeWait
        })
    })
    .await
    .unwrap();
    capture.flush(LIMIT).await.unwrap();
    let segments: Vec<Segment> = drain(&mut rx)
        .into_iter()
        .filter(|s| s.src == client_addr || s.dst == client_addr)
        .collect();
    let flags: Vec<String> = segments.iter().take(3).map(flags_text).collect();
    assert_eq!(flags, ["SYN", "SYN,ACK", "ACK"], "{segments:#?}");
    assert_eq!(segments[0].src, client_addr);
}
