//! Issue 10, the file-transfer faults: waits that end, slow clients that
//! cannot hold a file server, resume records that survive teardown, names
//! shown escaped, and working files that are ours.

use crate::support::run_script;

/// Issue 10 item 7: `upload` and `download` against a peer that is not a
/// `serve files` server end after the script's `--wait` (no `timeout`
/// given), with the exit status of a wait that ran out (75), and say what
/// happened: which side was waited for, what was sent, what came back.
#[test]
fn transfers_to_a_silent_peer_end_after_the_scripts_wait() {
    for (command, said) in [
        (
            "upload cli {tmp}/small",
            "error: waited 1s while reading the receiver's answer to the header; sent 30 bytes, got nothing back",
        ),
        (
            "download cli small as {tmp}/back",
            "error: waited 1s while reading the server's answer to the request; sent 21 bytes, got nothing back",
        ),
    ] {
        let script = format!(
            "write {{tmp}}/small \"hello\"\nlisten 0 as srv\nconnect srv as cli\n{command}\n"
        );
        let started = std::time::Instant::now();
        let run = run_script(&script, &["--wait", "1s"]);
        let took = started.elapsed();
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(all.contains(said), "{command}: {all}");
        assert_eq!(run.code, 75, "{command}: {all}");
        assert!(took < std::time::Duration::from_secs(30), "{command} took {took:?}");
    }
}

/// Issue 10 item 11: 2,000 clients that trickle their headers (a byte
/// every 200 ms) do not hold up `serve files`: a normal upload is served
/// within 1 s while they trickle. Bounded: 2,000 clients, each trickling at
/// most 60 bytes; every wait has a deadline; loopback only.
#[test]
fn a_normal_upload_is_served_within_a_second_while_2000_clients_trickle() {
    use std::time::{Duration, Instant};

    use socklab_net::transfer::{self, ReceiverConfig};
    use socklab_net::{FileService, Lab};
    use tokio::io::AsyncWriteExt;

    let limit = socklab_net::raise_fd_limit().expect("fd limit");
    // Each slow client costs two descriptors here (both ends).
    let slow = 2000usize.min((limit as usize).saturating_sub(256) / 2);
    assert!(slow >= 1000, "fd limit {limit} too low for this test");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let src = tempfile::tempdir().expect("tempdir");
    let file = src.path().join("normal.bin");
    std::fs::write(&file, vec![42u8; 256 * 1024]).expect("source");
    let took = rt.block_on(async {
        let (lab, mut events) = Lab::new(1024);
        let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
        let info = lab
            .serve_files(
                "127.0.0.1:0".parse().expect("addr"),
                Some("files"),
                FileService::Files(ReceiverConfig::new(dir.path())),
            )
            .expect("serve files");
        let addr = info.local.expect("local address");
        // A header for a long name, sent a byte at a time.
        let mut header = vec![0x53, 0x4c, 0x46, 0x54, 1, 1, 1];
        header.extend_from_slice(&100u64.to_be_bytes());
        header.extend_from_slice(&100u64.to_be_bytes());
        header.extend_from_slice(&200u16.to_be_bytes());
        header.extend(std::iter::repeat_n(b'n', 200));
        let header = std::sync::Arc::new(header);
        let (started_tx, mut started) = tokio::sync::mpsc::channel::<()>(slow);
        let stop = tokio_util_free_stop();
        let mut tricklers = Vec::with_capacity(slow);
        for _ in 0..slow {
            let (header, started_tx, stop) = (header.clone(), started_tx.clone(), stop.clone());
            tricklers.push(tokio::spawn(async move {
                let Ok(Ok(mut s)) = tokio::time::timeout(
                    Duration::from_secs(20),
                    tokio::net::TcpStream::connect(addr),
                )
                .await
                else {
                    let _ = started_tx.send(()).await;
                    return;
                };
                let _ = s.write_all(&header[..3]).await;
                let _ = started_tx.send(()).await;
                for b in header.iter().skip(3).take(57) {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if s.write_all(std::slice::from_ref(b)).await.is_err() {
                        break;
                    }
                }
            }));
        }
        drop(started_tx);
        for _ in 0..slow {
            tokio::time::timeout(Duration::from_secs(30), started.recv())
                .await
                .expect("slow clients connected in time");
        }
        let begun = Instant::now();
        let stream = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .expect("connect in time")
        .expect("connect");
        let report = tokio::time::timeout(
            Duration::from_secs(10),
            transfer::upload(stream, &file, "normal.bin", false, |_, _| {}),
        )
        .await
        .expect("upload within 10 s")
        .expect("upload");
        let took = begun.elapsed();
        assert_eq!(report.size, 256 * 1024);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in tricklers {
            t.abort();
        }
        lab.close_all().await;
        drop(lab);
        let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
        took
    });
    eprintln!("item 11: a normal upload took {took:?} while {slow} clients trickled their headers");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(dir.path().join("normal.bin").exists());
}

/// A flag the trickling clients read to stop.
fn tokio_util_free_stop() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false))
}

/// Issue 10 item 15: names with bidi controls, marks and separators
/// (U+202E, U+2028, U+200F, U+061C) are shown escaped, once: in "saved
/// as", in `files`, in the server's report, in received text; a refused
/// name (here with an ESC in it) is escaped once, not twice.
#[test]
fn hidden_characters_in_names_and_text_are_escaped_once() {
    let evil = "a\u{202E}b\u{2028}c\u{200F}d\u{061C}e.txt";
    // A header for the 3-byte name "a", ESC, "b": refused for its name.
    let refused_header = "534c4654010101000000000000000100000000000000010003611b62";
    let script = format!(
        "mkdir {{tmp}}/srv\n\
         write {{tmp}}/src \"hello\"\n\
         serve files {{tmp}}/srv 0 as files\n\
         upload files {{tmp}}/src as \"{evil}\"\n\
         files {{tmp}}/srv\n\
         download files \"{evil}\" as \"{{tmp}}/{evil}\"\n\
         socket tcp as bad\n\
         connect bad files\n\
         send bad hex:{refused_header}\n\
         recv bad\n\
         close bad\n\
         listen 0 as echo\n\
         connect echo as talk\n\
         send talk \"x\u{202E}y\"\n"
    );
    let run = run_script(&script, &[]);
    let out = format!("{}{}", run.stdout, run.stderr);
    // The echo of the script's own lines shows them as typed; everything
    // socklab says about them must be escaped.
    let said: String = out
        .lines()
        .filter(|l| !l.starts_with("socklab> "))
        .collect::<Vec<_>>()
        .join("\n");
    for c in ['\u{202E}', '\u{2028}', '\u{200F}', '\u{061C}', '\u{1b}'] {
        assert!(!said.contains(c), "raw {c:?} in:\n{said}");
    }
    let shown = "a\\u{202e}b\\u{2028}c\\u{200f}d\\u{61c}e.txt";
    assert!(said.contains(&format!("received \"{shown}\"")), "{said}");
    assert!(
        said.contains(&format!("saved as {{tmp}}/srv/{shown}")),
        "{said}"
    );
    assert!(
        said.contains(&format!("saved as {{tmp}}/{shown}")),
        "{said}"
    );
    assert!(
        said.lines().any(|l| l.starts_with(shown)),
        "files lists it:\n{said}"
    );
    assert!(said.contains("refused \"a\\u{1b}b\""), "{said}");
    assert!(!said.contains("\\\\u{"), "escaped twice:\n{said}");
    assert!(said.contains("\"x\\u{202e}y\""), "received text:\n{said}");
}
