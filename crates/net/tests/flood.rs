//! Issue 11: a watched connection's flood is read into recycled buffers
//! and searched by `expect` where it lies. What is still held (an event's
//! payload, the inbox's last MiB) must never be overwritten by a later
//! read into a reused buffer, and `expect` must take exactly the bytes
//! before and of the first match.

use std::collections::VecDeque;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use socklab_net::{Event, Lab, ServeMode};

/// What the peer sends at stream position `i`: lower-case letters that
/// change with the position (never the upper-case needle).
fn byte_at(i: usize) -> u8 {
    b'a' + ((i / 7919 + i) % 23) as u8
}

const TOTAL: usize = 96 << 20;

/// A held read's bytes are still the bytes sent at its place.
fn check(from: usize, bytes: &[u8]) {
    for (k, &b) in bytes.iter().enumerate() {
        let i = from + k;
        let want = if i < TOTAL {
            byte_at(i)
        } else {
            NEEDLE[i - TOTAL]
        };
        assert_eq!(
            b, want,
            "a held read's byte at stream position {i} was overwritten"
        );
    }
}

const NEEDLE: &[u8] = b"END";

/// Issue 11: read buffers are reused once nothing holds their reads. A
/// flood of 96 MiB is read while events of it are held for a while here
/// (as a slow printer would) and the inbox keeps its last MiB; every byte kept
/// is still the byte sent at its place, and `expect END` takes the inbox's
/// last MiB ending with the needle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recycled_read_buffers_never_overwrite_what_is_still_held() {
    let (lab, mut rx) = Lab::new(1024);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    lab.serve(any, 16, Some("srv"), ServeMode::Task).unwrap();
    let to = lab.connect_addr_of("srv").unwrap();

    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(to).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut at = 0;
        // Writes of changing sizes, so reads end at changing places.
        let mut size = 1000;
        while at < TOTAL {
            let n = size.min(TOTAL - at);
            let chunk: Vec<u8> = (at..at + n).map(byte_at).collect();
            s.write_all(&chunk).unwrap();
            at += n;
            size = size * 7 % 400_009 + 1;
        }
        s.write_all(NEEDLE).unwrap();
        s
    });

    // The events: every 2nd read of srv.1 is held, with where it began,
    // for the next 8 such reads (so buffers are reused meanwhile), and its
    // bytes are checked when let go: by then later reads went into reused
    // buffers.
    let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
    let events = tokio::spawn(async move {
        let mut accepted = Some(accepted_tx);
        let mut at = 0usize;
        let mut reads = 0usize;
        let mut held: VecDeque<(usize, Bytes)> = VecDeque::new();
        let mut checked = 0usize;
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Accepted { conn, .. } => {
                    if let Some(tx) = accepted.take() {
                        let _ = tx.send(conn.to_string());
                    }
                }
                Event::Data { socket, data } if &*socket == "srv.1" => {
                    if reads % 2 == 0 {
                        held.push_back((at, data.bytes()));
                    }
                    if held.len() > 8 {
                        if let Some((from, bytes)) = held.pop_front() {
                            check(from, &bytes);
                            checked += 1;
                        }
                    }
                    reads += 1;
                    at += data.len();
                    if at >= TOTAL + NEEDLE.len() {
                        break;
                    }
                }
                _ => {}
            }
        }
        for (from, bytes) in held.drain(..) {
            check(from, &bytes);
            checked += 1;
        }
        (at, checked)
    });

    let name = tokio::time::timeout(Duration::from_secs(30), accepted_rx)
        .await
        .expect("accepted within 30 s")
        .unwrap();
    assert_eq!(name, "srv.1");
    let finder = |b: &[u8]| {
        b.windows(NEEDLE.len())
            .position(|w| w == NEEDLE)
            .map(|i| i + NEEDLE.len())
    };
    let got = tokio::time::timeout(
        Duration::from_secs(120),
        lab.expect_bounded("srv.1", finder, Some(NEEDLE.len())),
    )
    .await
    .expect("matched within 120 s")
    .unwrap();
    let _stream = sender.join().unwrap();

    // The inbox kept its last MiB: the bytes before the needle, in order.
    assert!(got.ends_with(NEEDLE));
    let body = &got[..got.len() - NEEDLE.len()];
    assert!(!body.is_empty() && body.len() <= 1 << 20, "{}", body.len());
    let from = TOTAL - body.len();
    for (k, &b) in body.iter().enumerate() {
        assert_eq!(
            b,
            byte_at(from + k),
            "inbox byte at stream position {}",
            from + k
        );
    }

    let (seen, checked) = tokio::time::timeout(Duration::from_secs(60), events)
        .await
        .expect("every read reported within 60 s")
        .unwrap();
    assert_eq!(seen, TOTAL + NEEDLE.len());
    // A read is at most 1 MiB: at least 96 reads, every 2nd held.
    assert!(checked >= 40, "{checked} reads checked");
    lab.close_all().await;
}
