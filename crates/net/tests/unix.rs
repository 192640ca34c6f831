//! UNIX-domain sockets through the library: settlement between two UNIX
//! sockets of the lab (paired by inode, not address), and the bound on
//! departed clients a UNIX server keeps, as for TCP.

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use socklab_net::{Event, Lab, ServeMode, UnixAddr, KEEP_DEPARTED};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// A send between two UNIX sockets of the lab returns only after the
/// receiver reported the bytes, and a connect only after the accept: the
/// events are on the channel when the call returns, on every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_peers_settle_as_tcp_ones_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = UnixAddr::Path(dir.path().join("s.sock"));
    let (lab, mut rx) = Lab::new(1024);
    for round in 0..20 {
        let srv = format!("srv{round}");
        let cli = format!("cli{round}");
        lab.serve_unix(&path, 16, Some(&srv), ServeMode::Task)
            .unwrap();
        lab.dial_unix(&path, Some(&cli)).await.unwrap();
        assert!(
            matches!(rx.try_recv(), Ok(Event::UnixAccepted { .. })),
            "round {round}: the accept was not reported before connect returned"
        );
        lab.send(&cli, b"ping").await.unwrap();
        match rx.try_recv() {
            Ok(Event::Data { socket, data }) => {
                assert_eq!(&*socket, format!("{srv}.1"));
                assert_eq!(&data[..], b"ping");
            }
            other => {
                panic!("round {round}: the data was not reported before send returned: {other:?}")
            }
        }
        lab.send(&format!("{srv}.1"), b"pong").await.unwrap();
        assert!(
            matches!(rx.try_recv(), Ok(Event::Data { .. })),
            "round {round}"
        );
        lab.close(&cli).await.unwrap();
        assert!(
            matches!(rx.try_recv(), Ok(Event::PeerClosed { .. })),
            "round {round}: the close was not reported before close returned"
        );
        lab.close(&format!("{srv}.1")).await.unwrap();
        lab.close(&srv).await.unwrap();
        assert!(
            !dir.path().join("s.sock").exists(),
            "round {round}: the socket file outlived its listener"
        );
    }
    lab.close_all().await;
}

/// 2,000 UNIX clients that connect and leave: the server keeps at most
/// KEEP_DEPARTED of their connections open, as a TCP server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_departed_unix_clients_hold_a_bounded_number_of_descriptors() {
    let _ = socklab_net::raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.sock");
    let path = UnixAddr::Path(file.clone());
    let (lab, mut rx) = Lab::new(1024);
    lab.serve_unix(&path, 1024, Some("srv"), ServeMode::Task)
        .unwrap();
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let before = open_fds();
    let started = Instant::now();
    let clients = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut n = 0;
        while n < 2000 && Instant::now() < deadline {
            if UnixStream::connect(&file).is_ok() {
                n += 1;
            }
        }
        n
    })
    .await
    .unwrap();
    assert_eq!(clients, 2000);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let open = lab.names().len();
        if lab.info("srv").unwrap().accepted == 2000 && open <= KEEP_DEPARTED + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kept = lab.names().len() - 1;
    let fds = open_fds();
    eprintln!(
        "unix: 2,000 departures accepted and retired in {:?}; {kept} kept open; fds {before} before, {fds} after",
        started.elapsed()
    );
    assert!(kept <= KEEP_DEPARTED, "{kept} departed connections kept");
    assert!(fds < before + KEEP_DEPARTED + 16, "fds {before} -> {fds}");
    lab.close_all().await;
}
