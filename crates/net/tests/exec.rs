//! Programs as tubes (`exec`) and servers that wire each client to a
//! program (`listen … exec`), with real programs: cat, python3, sh, sleep.

use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use socklab_net::{Command, Event, Lab, ReadOutcome, Role, ServeMode};
use tokio::sync::mpsc;

fn cmd(program: &str, args: &[&str]) -> Command {
    Command {
        program: program.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
    }
}

/// Receives events until `done` accepts one (at most 10 s); returns all.
async fn events_until(rx: &mut mpsc::Receiver<Event>, done: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let wait = async {
        while let Some(ev) = rx.recv().await {
            let stop = done(&ev);
            seen.push(ev);
            if stop {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no such event; saw {seen:?}"));
    seen
}

fn is_exit(ev: &Event) -> bool {
    matches!(ev, Event::Exited { .. })
}

fn exit_code(evs: &[Event]) -> Option<i32> {
    evs.iter().find_map(|e| match e {
        Event::Exited { status, .. } => status.and_then(|s| s.code()),
        _ => None,
    })
}

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test]
async fn cat_echoes_what_is_sent_and_close_reports_its_exit() {
    let (lab, mut rx) = Lab::new(64);
    let info = lab.exec(cmd("cat", &[]), Some("cat")).unwrap();
    assert_eq!(info.role, Role::Program);
    let (pid, shown) = info.program.clone().unwrap();
    assert_eq!(shown, "cat");
    assert!(pid_alive(pid));
    assert_eq!(lab.send("cat", b"hello\n").await.unwrap(), 6);
    let got = lab
        .expect("cat", |b| {
            b.windows(6).position(|w| w == b"hello\n").map(|p| p + 6)
        })
        .await
        .unwrap();
    assert_eq!(&got[..], b"hello\n");
    lab.close("cat").await.unwrap();
    let evs = events_until(&mut rx, is_exit).await;
    assert!(matches!(&evs[0], Event::Data { data, .. } if &data[..] == b"hello\n"));
    assert!(evs.iter().any(|e| matches!(e, Event::PeerClosed { .. })));
    assert_eq!(exit_code(&evs), Some(0));
    assert!(!pid_alive(pid), "cat outlived close");
    assert!(!lab.exists("cat"));
}

#[tokio::test]
async fn stderr_is_its_own_event() {
    let (lab, mut rx) = Lab::new(64);
    let py = "import sys; sys.stderr.write('oops\\n'); sys.stderr.flush(); sys.exit(2)";
    lab.exec(cmd("python3", &["-c", py]), Some("py")).unwrap();
    let evs = events_until(&mut rx, is_exit).await;
    let stderr: Vec<u8> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Stderr { data, .. } => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(stderr, b"oops\n");
    assert!(!evs.iter().any(|e| matches!(e, Event::Data { .. })));
    assert_eq!(exit_code(&evs), Some(2));
    // Closing a program that has ended reports nothing new and succeeds.
    lab.close("py").await.unwrap();
}

#[tokio::test]
async fn a_program_that_exits_early_reports_eof_then_its_status() {
    let (lab, mut rx) = Lab::new(64);
    lab.exec(cmd("sh", &["-c", "echo bye; exit 3"]), Some("early"))
        .unwrap();
    let evs = events_until(&mut rx, is_exit).await;
    let order: Vec<&str> = evs
        .iter()
        .map(|e| match e {
            Event::Data { .. } => "data",
            Event::PeerClosed { .. } => "eof",
            Event::Exited { .. } => "exit",
            _ => "other",
        })
        .collect();
    assert_eq!(order, ["data", "eof", "exit"]);
    assert_eq!(exit_code(&evs), Some(3));
    // Writing to it now fails and says how much went.
    let err = lab.send("early", b"anyone?").await.unwrap_err();
    assert!(err.to_string().contains("sent 0 of 7 bytes"), "{err}");
    lab.close("early").await.unwrap();
}

#[tokio::test]
async fn a_program_that_never_reads_is_terminated_by_close() {
    let (lab, mut rx) = Lab::new(64);
    let info = lab.exec(cmd("sleep", &["30"]), Some("nap")).unwrap();
    let pid = info.program.unwrap().0;
    lab.close("nap").await.unwrap();
    let evs = events_until(&mut rx, is_exit).await;
    let signal = evs.iter().find_map(|e| match e {
        Event::Exited { status, .. } => status.and_then(|s| s.signal()),
        _ => None,
    });
    assert_eq!(signal, Some(libc::SIGTERM));
    assert!(!pid_alive(pid));
}

#[tokio::test]
async fn shutdown_write_closes_its_stdin() {
    let (lab, mut rx) = Lab::new(64);
    // wc -c prints the count only once its input ends.
    lab.exec(cmd("wc", &["-c"]), Some("wc")).unwrap();
    lab.send("wc", b"12345").await.unwrap();
    lab.shutdown("wc", std::net::Shutdown::Write).await.unwrap();
    let got = lab
        .expect("wc", |b| b.iter().position(|c| *c == b'\n').map(|p| p + 1))
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got).trim(), "5");
    let evs = events_until(&mut rx, is_exit).await;
    assert_eq!(exit_code(&evs), Some(0));
    lab.close("wc").await.unwrap();
}

#[tokio::test]
async fn manual_reads_work_on_a_program_too() {
    let (lab, _rx) = Lab::new(64);
    lab.exec(cmd("cat", &[]), Some("cat")).unwrap();
    lab.set_watch("cat", false).await.unwrap();
    lab.send("cat", b"ping").await.unwrap();
    let got = lab.recv("cat", 1024).await.unwrap();
    assert_eq!(got, ReadOutcome::Data(bytes::Bytes::from_static(b"ping")));
    lab.close("cat").await.unwrap();
}

#[tokio::test]
async fn a_missing_program_is_an_error_and_leaves_nothing() {
    let (lab, _rx) = Lab::new(64);
    let err = lab
        .exec(cmd("/nonexistent/socklab-no-such-program", &[]), Some("x"))
        .unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
    assert!(!lab.exists("x"));
}

#[tokio::test]
async fn socket_calls_on_a_program_say_it_is_not_a_socket() {
    let (lab, _rx) = Lab::new(64);
    lab.exec(cmd("cat", &[]), Some("cat")).unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    for err in [
        lab.bind("cat", addr).unwrap_err(),
        lab.listen("cat", 1).unwrap_err(),
        lab.sendto("cat", addr, b"x").await.unwrap_err(),
    ] {
        assert!(err.to_string().contains("is a program"), "{err}");
    }
    lab.close("cat").await.unwrap();
}

#[tokio::test]
async fn close_all_leaves_no_program_behind() {
    let (lab, _rx) = Lab::new(64);
    let a = lab.exec(cmd("sleep", &["30"]), None).unwrap();
    let b = lab.exec(cmd("cat", &[]), None).unwrap();
    let pids = [a.program.unwrap().0, b.program.unwrap().0];
    assert_eq!(lab.close_all().await, 2);
    for pid in pids {
        assert!(!pid_alive(pid), "{pid} outlived close_all");
    }
}

#[tokio::test]
async fn listen_exec_wires_each_client_to_its_own_program() {
    let (lab, mut rx) = Lab::new(256);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    lab.serve_exec(any, 16, Some("echo"), cmd("cat", &[]))
        .unwrap();
    let to = lab.connect_addr_of("echo").unwrap();
    lab.dial(to, Some("c1"), None).await.unwrap();
    lab.dial(to, Some("c2"), None).await.unwrap();
    // Both accepts and both starts were reported before dial returned.
    let mut early = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        early.push(ev);
    }
    let started: Vec<u32> = early
        .iter()
        .filter_map(|e| match e {
            Event::Started { pid, .. } => Some(*pid),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 2, "{early:?}");
    assert_ne!(started[0], started[1]);
    lab.send("c1", b"one\n").await.unwrap();
    lab.send("c2", b"two\n").await.unwrap();
    let one = lab
        .expect("c1", |b| b.iter().position(|c| *c == b'\n').map(|p| p + 1))
        .await
        .unwrap();
    let two = lab
        .expect("c2", |b| b.iter().position(|c| *c == b'\n').map(|p| p + 1))
        .await
        .unwrap();
    assert_eq!((&one[..], &two[..]), (&b"one\n"[..], &b"two\n"[..]));
    // A client's close settles on its program's exit.
    lab.close("c1").await.unwrap();
    let mut evs = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        evs.push(ev);
    }
    assert!(
        evs.iter()
            .any(|e| matches!(e, Event::Exited { socket, status } if &**socket == "echo.1" && status.and_then(|s| s.code()) == Some(0))),
        "{evs:?}"
    );
    // Closing the server ends the programs it still runs.
    lab.close("echo").await.unwrap();
    for pid in started {
        assert!(!pid_alive(pid), "{pid} outlived its server");
    }
    lab.close_all().await;
}

#[tokio::test]
async fn listen_exec_reports_a_program_that_cannot_start() {
    let (lab, mut rx) = Lab::new(64);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    lab.serve_exec(any, 16, Some("bad"), cmd("/nonexistent/socklab-x", &[]))
        .unwrap();
    let to = lab.connect_addr_of("bad").unwrap();
    lab.dial(to, Some("c"), None).await.unwrap();
    let evs = events_until(&mut rx, |e| matches!(e, Event::Failed { .. })).await;
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::Failed { socket, .. } if &**socket == "bad.1")));
    lab.close_all().await;
}

#[tokio::test]
async fn thread_mode_still_reads_on_its_own_threads() {
    let (lab, mut rx) = Lab::new(64);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    lab.serve(any, 16, Some("srv"), ServeMode::Thread).unwrap();
    let to = lab.connect_addr_of("srv").unwrap();
    lab.dial(to, Some("c"), None).await.unwrap();
    lab.send("c", b"hi").await.unwrap();
    lab.close("c").await.unwrap();
    let evs = events_until(
        &mut rx,
        |e| matches!(e, Event::PeerClosed { socket } if &**socket == "srv.1"),
    )
    .await;
    assert!(evs.iter().any(
        |e| matches!(e, Event::Data { socket, data } if &**socket == "srv.1" && &data[..] == b"hi")
    ));
    lab.close_all().await;
}

/// Whether a process whose command line contains `needle` still runs.
fn any_process_with(needle: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
}

/// Review of issue 9: a program's own children (a pipeline) outlived
/// `close`, reparented to init; the program now has a process group of its
/// own and close ends the group.
#[tokio::test]
async fn close_ends_what_the_program_started_too() {
    let (lab, _rx) = Lab::new(64);
    lab.exec(cmd("sh", &["-c", "sleep 3131 | cat"]), Some("pipe"))
        .unwrap();
    lab.close("pipe").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while any_process_with("sleep 3131") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !any_process_with("sleep 3131"),
        "the pipeline outlived close"
    );
}

/// Review of issue 9: `listen … exec` dropped what the program wrote last
/// when the program exited before the copy to the client was done.
#[tokio::test]
async fn listen_exec_delivers_all_a_program_wrote_before_it_exited() {
    let (lab, _rx) = Lab::new(1024);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let cmdline = "head -c 200000 /dev/zero | tr '\\0' x";
    lab.serve_exec(any, 16, Some("gen"), cmd("sh", &["-c", cmdline]))
        .unwrap();
    let to = lab.connect_addr_of("gen").unwrap();
    lab.dial(to, Some("c"), None).await.unwrap();
    let mut total = 0usize;
    let got = lab
        .expect("c", |b| {
            total = b.len();
            (total >= 200_000).then_some(200_000)
        })
        .await;
    assert!(got.is_ok(), "only {total} of 200000 bytes arrived");
    lab.close_all().await;
}

/// Review of issue 9: a client of a `listen … exec` server whose program
/// never reads made `close` wait for its whole limit; the program now gets
/// its grace period from the moment the client's side ends.
#[tokio::test]
async fn closing_a_client_ends_a_program_that_ignores_its_input() {
    let (lab, mut rx) = Lab::new(64);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    lab.serve_exec(any, 16, Some("s"), cmd("sleep", &["3141"]))
        .unwrap();
    let to = lab.connect_addr_of("s").unwrap();
    lab.dial(to, Some("c"), None).await.unwrap();
    lab.close("c").await.unwrap();
    let evs = events_until(&mut rx, is_exit).await;
    let signal = evs.iter().find_map(|e| match e {
        Event::Exited { status, .. } => status.and_then(|s| s.signal()),
        _ => None,
    });
    assert_eq!(signal, Some(libc::SIGTERM));
    assert!(!any_process_with("sleep 3141"));
    lab.close_all().await;
}

/// Review of issue 9: a transfer could not take a connection of an
/// iterative server (its accept loop kept the connection), and the server
/// then never took its next client.
#[tokio::test]
async fn a_connection_of_an_iterative_server_can_be_taken_and_the_next_is_served() {
    let (lab, _rx) = Lab::new(64);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    lab.serve(any, 16, Some("it"), ServeMode::Iterative)
        .unwrap();
    let to = lab.connect_addr_of("it").unwrap();
    lab.dial(to, Some("a"), None).await.unwrap();
    let stream = lab.take_stream("it.1").await.unwrap();
    assert!(!lab.exists("it.1"));
    drop(stream);
    lab.dial(to, Some("b"), None).await.unwrap();
    let b = lab.info("b").unwrap();
    assert_eq!(b.state, "connected", "b should be served, not queued");
    assert!(lab.exists("it.2"));
    lab.close_all().await;
}
