//! Issue 10 item 13: departed clients of a server do not hold descriptors
//! forever, and `close srv.*` closes thousands at once.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socklab_net::{Event, Lab, ServeMode, KEEP_DEPARTED};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Issue 10 item 13: 5,000 connect-and-leave cycles took a session from 10
/// to 5,010 descriptors, until every accept failed at the fd limit. A
/// server now keeps at most KEEP_DEPARTED such connections open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_departed_clients_hold_a_bounded_number_of_descriptors() {
    let _ = socklab_net::raise_fd_limit();
    let (lab, mut rx) = Lab::new(1024);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    lab.serve(any, 1024, Some("srv"), ServeMode::Task).unwrap();
    let to = lab.connect_addr_of("srv").unwrap();
    let retired = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(ev) = rx.recv().await {
            if matches!(ev, Event::Retired { .. }) {
                n += 1;
            }
        }
        n
    });
    let before = open_fds();
    let started = Instant::now();
    // 5,000 clients, each connecting and leaving; bounded in count and time.
    let clients = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut n = 0;
        while n < 5000 && Instant::now() < deadline {
            if TcpStream::connect(to).is_ok() {
                n += 1;
            }
        }
        n
    })
    .await
    .unwrap();
    assert_eq!(clients, 5000);
    // Wait (bounded) until the server has accepted them all and retired all
    // but the last KEEP_DEPARTED.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let open = lab.names().len();
        if lab.info("srv").unwrap().accepted == 5000 && open <= KEEP_DEPARTED + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kept = lab.names().len() - 1;
    let fds = open_fds();
    eprintln!(
        "item 13: 5,000 departures in {:?}; {kept} kept open; fds {before} before, {fds} after",
        started.elapsed()
    );
    assert!(kept <= KEEP_DEPARTED, "{kept} departed connections kept");
    assert!(fds < before + KEEP_DEPARTED + 16, "fds {before} -> {fds}");
    let started = Instant::now();
    let names: Vec<String> = lab.names().into_iter().filter(|n| n != "srv").collect();
    for r in lab.close_many(&names).await {
        r.unwrap();
    }
    eprintln!(
        "item 13: closed the {} kept in {:?}",
        names.len(),
        started.elapsed()
    );
    lab.close_all().await;
    drop(lab);
    let n = retired.await.unwrap();
    assert!(n >= 5000 - KEEP_DEPARTED as u64, "{n} retired");
    close_many_closes_five_thousand_live_connections().await;
}

/// Issue 10 item 13: closing 5,000 children one by one took 71 s (each
/// close waited for the kernel's goodbye by reading its socket table);
/// `close srv.*` closes them in one go. (Run after the test above, in the
/// same test: both count this process's descriptors.)
async fn close_many_closes_five_thousand_live_connections() {
    let _ = socklab_net::raise_fd_limit();
    let (lab, mut rx) = Lab::new(1024);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    lab.serve(any, 1024, Some("srv"), ServeMode::Task).unwrap();
    let to = lab.connect_addr_of("srv").unwrap();
    let clients = tokio::task::spawn_blocking(move || {
        (0..5000)
            .filter_map(|_| TcpStream::connect(to).ok())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(clients.len(), 5000);
    let deadline = Instant::now() + Duration::from_secs(60);
    while lab.info("srv").unwrap().accepted < 5000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let names: Vec<String> = lab.names().into_iter().filter(|n| n != "srv").collect();
    assert_eq!(names.len(), 5000);
    let started = Instant::now();
    let results = lab.close_many(&names).await;
    eprintln!("item 13: close_many of 5,000 took {:?}", started.elapsed());
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(lab.names(), vec!["srv".to_string()]);
    drop(clients);
    lab.close_all().await;
}
