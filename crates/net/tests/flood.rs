//! Issue 11: a watched connection's flood is read into recycled buffers
//! and searched by `expect` where it lies. What is still held (an event's
//! payload, the inbox's last MiB) must never be overwritten by a later
//! read into a reused buffer, and `expect` must take exactly the bytes
//! before and of the first match.

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
const NEEDLE: &[u8] = b"END";

/// Issue 11: read buffers are reused once nothing holds their reads. A
/// flood of 96 MiB is read while events of it are kept alive here (as a
/// slow printer would) and the inbox keeps its last MiB; every byte kept
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

    // The events: every 16th read of srv.1 is kept, with where it began.
    let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
    let events = tokio::spawn(async move {
        let mut accepted = Some(accepted_tx);
        let mut at = 0usize;
        let mut reads = 0usize;
        let mut kept: Vec<(usize, Bytes)> = Vec::new();
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Accepted { conn, .. } => {
                    if let Some(tx) = accepted.take() {
                        let _ = tx.send(conn.to_string());
                    }
                }
                Event::Data { socket, data } if &*socket == "srv.1" => {
                    if reads % 16 == 0 && kept.len() < 64 {
                        kept.push((at, data.bytes()));
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
        (at, kept)
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

    let (seen, kept) = tokio::time::timeout(Duration::from_secs(60), events)
        .await
        .expect("every read reported within 60 s")
        .unwrap();
    assert_eq!(seen, TOTAL + NEEDLE.len());
    assert!(kept.len() > 10, "{} reads kept", kept.len());
    for (at, bytes) in &kept {
        for (k, &b) in bytes.iter().enumerate() {
            let i = at + k;
            let want = if i < TOTAL {
                byte_at(i)
            } else {
                NEEDLE[i - TOTAL]
            };
            assert_eq!(
                b, want,
                "a kept read's byte at stream position {i} was overwritten"
            );
        }
    }
    lab.close_all().await;
}
