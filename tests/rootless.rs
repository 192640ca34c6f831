//! The classroom without root: the shell enters a user namespace of its
//! own (`crates/net/src/hosts/rootless.rs`). Run as root (as in CI), the
//! test runs the shell as `nobody`; run as another user, as that user.
//! Where the kernel refuses user namespaces to that user, the shell says
//! what is missing, and the test prints it and skips.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The uid and gid of `nobody`, the unprivileged user a root test uses.
const NOBODY: u32 = 65534;

/// What one unprivileged run printed, and its exit status.
struct Run {
    text: String,
    code: Option<i32>,
}

/// The socklab binary where the unprivileged user reaches it, in a
/// temporary directory of that user's (also its HOME), and the command
/// that runs it as that user.
fn unprivileged_command(env: &[(&str, &str)]) -> (tempfile::TempDir, Command) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // nobody must reach the binary (the target directory may be root's
    // alone) and the directory.
    let bin = dir.path().join("socklab");
    // A link where it can be (the debug binary is large), else a copy.
    std::fs::hard_link(env!("CARGO_BIN_EXE_socklab"), &bin)
        .or_else(|_| std::fs::copy(env!("CARGO_BIN_EXE_socklab"), &bin).map(drop))
        .expect("the binary linked or copied");
    let open = |p: &Path| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod")
    };
    open(&bin);
    open(dir.path());
    let root = nix::unistd::geteuid().is_root();
    if root {
        nix::unistd::chown(
            dir.path(),
            Some(nix::unistd::Uid::from_raw(NOBODY)),
            Some(nix::unistd::Gid::from_raw(NOBODY)),
        )
        .expect("chown");
    }
    let mut cmd = Command::new(&bin);
    cmd.current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if root {
        // std drops the supplementary groups before setuid.
        cmd.uid(NOBODY).gid(NOBODY);
    }
    (dir, cmd)
}

/// Runs socklab without root on `script` (a session file).
fn unprivileged(script: &str, env: &[(&str, &str)]) -> Run {
    let (dir, mut cmd) = unprivileged_command(env);
    let file = dir.path().join("classroom.sock");
    std::fs::write(&file, script).expect("the session file written");
    let child = cmd
        .arg(&file)
        .stdin(Stdio::null())
        .spawn()
        .expect("socklab starts");
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.expect("socklab runs"),
        Err(_) => {
            // SAFETY: kill(2) on the child we started; no memory involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("socklab did not finish within 120 s; killed it");
        }
    };
    Run {
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        code: out.status.code(),
    }
}

/// Why the shell refused hosts, if it said so: the test then skips.
fn refused(test: &str, text: &str) -> bool {
    let Some(line) = text
        .lines()
        .find(|l| l.contains("hosts need root or a user namespace"))
    else {
        return false;
    };
    eprintln!(
        "SKIPPED {test}: this kernel gives no user namespace to an unprivileged user; \
         the shell said: {line}"
    );
    true
}

/// The namespaces named in the machine's `/run/netns`.
fn netns() -> BTreeSet<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The processes whose `/proc/PID/ns/KIND` link reads `ns`.
fn in_namespace(kind: &str, ns: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()?;
            (link.to_string_lossy() == ns).then_some(pid)
        })
        .collect()
}

/// The first `KIND:[N]` in `text`.
fn ns_named(text: &str, kind: &str) -> Option<String> {
    let at = text.find(&format!("{kind}:["))?;
    let end = text[at..].find(']')?;
    Some(text[at..=at + end].to_string())
}

#[test]
fn without_root_the_classroom_runs_in_a_user_namespace_and_leaves_nothing() {
    let run = unprivileged(
        "exec readlink /proc/self/ns/user as who\n\
         expect who /user:\\[\\d+\\]/\n\
         exec id -u as me\n\
         expect me /\\d+/\n\
         host add teacher\n\
         host add student 2\n\
         on teacher exec readlink /proc/self/ns/net as where\n\
         expect where /net:\\[\\d+\\]/\n\
         on teacher exec id -u as them\n\
         expect them /\\d+/\n\
         on teacher exec grep CapEff /proc/self/status as caps\n\
         expect caps /CapEff:\\s+\\w+/\n\
         on teacher listen 192.168.24.148 5556 as srv\n\
         on student1 connect 192.168.24.148 5556 as s1\n\
         send s1 \"hello teacher\"\n\
         on teacher udp 0.0.0.0 9999 as r\n\
         on student2 socket udp as b\n\
         set b broadcast on\n\
         sendto b 255.255.255.255 9999 \"class starts\"\n\
         on student2 ping 192.168.24.148 count 1\n\
         link teacher delay 20ms\n\
         link student1 loss 10%\n\
         link student2 rate 1mbit\n\
         trace on capture\n\
         on student2 connect 192.168.24.148 5556 as s2\n\
         trace off\n\
         hosts\n",
        &[],
    );
    let text = &run.text;
    if refused(
        "without_root_the_classroom_runs_in_a_user_namespace_and_leaves_nothing",
        text,
    ) {
        return;
    }
    assert_eq!(run.code, Some(0), "{text}");
    assert!(text.contains("teacher: host 192.168.24.148/24"), "{text}");
    // Programs the person runs keep the user's own uid, in the shell and
    // in a host, as outside socklab, and hold no capability; the `ip`
    // and `tc` that built the hosts had theirs.
    let uid = if nix::unistd::geteuid().is_root() {
        NOBODY
    } else {
        nix::unistd::getuid().as_raw()
    };
    for name in ["me", "them"] {
        assert!(
            text.contains(&format!("{name}: matched /\\d+/: \"{uid}\"")),
            "{name} is not uid {uid}: {text}"
        );
    }
    assert!(text.contains("\"CapEff:\\t0000000000000000\""), "{text}");
    assert!(
        text.contains("srv.1 <- 13 bytes \"hello teacher\""),
        "{text}"
    );
    assert!(text.contains(": 12 bytes \"class starts\""), "{text}");
    assert!(text.contains("1 sent, 1 answered"), "{text}");
    assert!(text.contains("delay 20ms"), "{text}");
    assert!(text.contains("student1: link loss 10%"), "{text}");
    assert!(text.contains("student2: link rate 1mbit"), "{text}");
    assert!(
        text.contains("trace: capturing on the lab LAN's bridge only"),
        "{text}"
    );
    assert!(text.contains("[SYN,ACK]"), "{text}");
    // The machine's /run/netns never saw the hosts: they were named in
    // the shell's own mount namespace.
    let shell = text
        .find("netns sl")
        .and_then(|at| text[at + "netns ".len()..].split('-').next())
        .expect("the shell's namespace prefix shown");
    assert!(
        !netns().iter().any(|n| n.starts_with(&format!("{shell}-"))),
        "{:?}",
        netns()
    );
    // Nothing runs in the shell's user namespace or the teacher's network
    // namespace any more.
    let user = ns_named(text, "user").expect("the shell's user namespace shown");
    let net = ns_named(text, "net").expect("the teacher's namespace shown");
    assert_ne!(
        Some(user.clone()),
        std::fs::read_link("/proc/self/ns/user")
            .ok()
            .map(|l| l.to_string_lossy().into_owned()),
        "the shell entered a user namespace of its own"
    );
    assert!(in_namespace("user", &user).is_empty(), "{user} still used");
    assert!(in_namespace("net", &net).is_empty(), "{net} still used");
}

#[test]
fn refused_a_user_namespace_hosts_say_what_is_missing() {
    // The refusal taken on purpose: it says the setting, and asks for root.
    let run = unprivileged("host add teacher\n", &[("SOCKLAB_NO_USERNS", "1")]);
    let text = &run.text;
    assert_eq!(run.code, Some(69), "{text}");
    assert!(
        text.contains("hosts need root or a user namespace of socklab's own")
            && text.contains("SOCKLAB_NO_USERNS is set")
            && text.contains("sudo socklab"),
        "{text}"
    );
}

/// The namespaces (`KIND:[N]`) the threads of process `pid` are in.
fn namespaces_of(pid: u32, kind: &str) -> BTreeSet<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeSet::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_link(t.path().join("ns").join(kind)).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_rootless_shell_killed_leaves_no_namespace_behind() {
    let (_dir, mut cmd) = unprivileged_command(&[]);
    let mut child = cmd.stdin(Stdio::piped()).spawn().expect("socklab starts");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(b"host add teacher\nhost add student 2\n")
        .expect("written");
    // Read until the hosts are made (or the shell says why not).
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    while !seen.contains("2 hosts:") {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => break,
        }
    }
    let mut net = namespaces_of(pid, "net");
    let machine = std::fs::read_link("/proc/self/ns/net")
        .ok()
        .map(|l| l.to_string_lossy().into_owned());
    net.retain(|n| Some(n) != machine.as_ref());
    let user = namespaces_of(pid, "user");
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if refused(
        "a_rootless_shell_killed_leaves_no_namespace_behind",
        &format!("{seen}{err}"),
    ) {
        return;
    }
    assert!(seen.contains("2 hosts:"), "{seen}{err}");
    // Besides the machine's, the shell's threads were in the LAN's
    // namespace and the three hosts'; and in a user namespace of their own.
    assert_eq!(net.len(), 4, "{net:?}");
    assert_eq!(user.len(), 1, "{user:?}");
    // Killed, nothing is left in them: the kernel freed them with it (no
    // name of them was ever in the machine's /run/netns to outlive it).
    for ns in net.iter().chain(&user) {
        let kind = if user.contains(ns) { "user" } else { "net" };
        assert!(in_namespace(kind, ns).is_empty(), "{ns} still used");
    }
    assert!(
        !netns().iter().any(|n| n.starts_with(&format!("sl{pid}-"))),
        "{:?}",
        netns()
    );
}
