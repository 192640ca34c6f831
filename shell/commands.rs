//! The command table: every command's name, usage, help and handler.
//! `help`, completion, hints, dispatch and `docs/commands.md` all read it.

use std::future::Future;
use std::net::Shutdown;
use std::pin::Pin;
use std::time::Duration;

use socklab_net::{
    Family, Framing, Mode, OptKind, OptValue, Proto, ReadOutcome, Role, ServeMode, SockOpt,
    TraceMode, TraceWish,
};

use crate::args::{
    duration_of, host_port, number_of, port_of, resolve, Args, CmdError, CmdResult, Exit,
};
use crate::parse::{Token, TokenKind};
use crate::render::{self, Format};
use crate::session::Session;

/// A command's future.
pub type BoxFuture<'a> = Pin<Box<dyn Future<Output = CmdResult> + 'a>>;
/// A command's handler.
pub type Handler = for<'a> fn(&'a mut Session, Args) -> BoxFuture<'a>;

/// One command of the shell.
pub struct Command {
    /// What the user types.
    pub name: &'static str,
    /// Other names for it.
    pub aliases: &'static [&'static str],
    /// Its forms, one per line.
    pub usage: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// More on how to use it.
    pub help: &'static str,
    /// Runs it.
    pub run: Handler,
}

/// Every command, in the order `help` lists them.
pub static COMMANDS: &[Command] = &[
    Command {
        name: "socket",
        aliases: &[],
        usage: "socket tcp|udp [v4|v6] [as NAME]",
        summary: "create a socket, like Python's socket.socket(AF_INET, SOCK_STREAM)",
        help: "Creates an unbound TCP (SOCK_STREAM) or UDP (SOCK_DGRAM) socket and prints it the way Python does.\n\
               TCP: set options, bind, listen/accept (server) or connect (client), step by step.\n\
               UDP: bind (receiver), sendto/recvfrom; or connect, then send/recv.",
        run: |s, a| Box::pin(socket(s, a)),
    },
    Command {
        name: "set",
        aliases: &["setsockopt"],
        usage: "set NAME OPTION VALUE",
        summary: "set a socket option (setsockopt)",
        help: "Options: reuseaddr, reuseport, nodelay, keepalive, v6only, broadcast (on|off); rcvbuf, sndbuf (bytes, like 64K);\n\
               ttl (hops); linger (off, or a time like 5s; 0s makes close send a reset).\n\
               reuseaddr, reuseport and v6only matter only when set before bind.",
        run: |s, a| Box::pin(set(s, a)),
    },
    Command {
        name: "get",
        aliases: &["getsockopt"],
        usage: "get NAME OPTION",
        summary: "read a socket option (getsockopt)",
        help: "Shows the option's value as the kernel reports it (Linux doubles rcvbuf/sndbuf).",
        run: |s, a| Box::pin(get(s, a)),
    },
    Command {
        name: "bind",
        aliases: &[],
        usage: "bind NAME HOST PORT",
        summary: "give a socket its local address (bind)",
        help: "Port 0 lets the OS pick a free port. HOST 127.0.0.1 is reachable from this machine only.",
        run: |s, a| Box::pin(bind(s, a)),
    },
    Command {
        name: "listen",
        aliases: &[],
        usage: "listen NAME [BACKLOG]\nlisten [HOST] PORT [backlog N] [mode iterative|thread|task] [as NAME]",
        summary: "listen on a socket, or start a server that accepts every client",
        help: "With a socket's NAME: the listen() call; clients then wait in the accept queue until `accept`.\n\
               With a PORT: socket + bind + listen, and every client is accepted in the background and named\n\
               NAME.1, NAME.2, …; their data shows as events. HOST defaults to 127.0.0.1. Port 0 picks a free port.\n\
               mode: task (default, async), thread (an OS thread per client), or iterative (one client at a time,\n\
               like the lecture's loop: the next is accepted after `close NAME.N`; meanwhile it waits in the backlog).",
        run: |s, a| Box::pin(listen(s, a)),
    },
    Command {
        name: "accept",
        aliases: &[],
        usage: "accept NAME [as CONN] [timeout DUR]",
        summary: "take one client from a listener's queue (accept)",
        help: "Waits for a client if none is queued. The new connection is read with `recv`.\n\
               On a server from `listen PORT` (which accepts by itself), waits until its next client is accepted.",
        run: |s, a| Box::pin(accept(s, a)),
    },
    Command {
        name: "connect",
        aliases: &[],
        usage: "connect NAME HOST PORT [timeout DUR]\nconnect NAME LISTENER [timeout DUR]\nconnect HOST PORT [as NAME] [timeout DUR]\nconnect LISTENER [as NAME] [timeout DUR]",
        summary: "connect a socket, or open a new connection whose data shows as events",
        help: "With the NAME of a socket from `socket`: the connect() call; read it with `recv`.\n\
               Otherwise a new connection is made and its data arrives as events.\n\
               LISTENER is a listening socket of this shell (no need to type its port).",
        run: |s, a| Box::pin(connect(s, a)),
    },
    Command {
        name: "send",
        aliases: &["sendall"],
        usage: "send NAME DATA",
        summary: "write all of DATA (like sendall) and report the bytes written",
        help: "DATA is a word, a quoted string (\"a\\n\" with escapes \\n \\r \\t \\\\ \\\" \\' \\0 \\xNN \\u{...}),\n\
               bytes as hex:48656c6c6f, or fill:SIZE (SIZE bytes of 'x'). Text is sent as UTF-8.\n\
               On a connected UDP socket, send is one datagram.",
        run: |s, a| Box::pin(send(s, a)),
    },
    Command {
        name: "sendto",
        aliases: &[],
        usage: "sendto NAME HOST PORT DATA\nsendto NAME TARGET DATA",
        summary: "send one UDP datagram to an address (sendto)",
        help: "TARGET is a UDP socket of this shell. DATA as for send; fill:SIZE sends SIZE bytes of 'x'.\n\
               The largest IPv4 UDP payload is 65507 bytes; more fails with 'Message too long'.",
        run: |s, a| Box::pin(sendto(s, a)),
    },
    Command {
        name: "recvfrom",
        aliases: &[],
        usage: "recvfrom NAME [MAX] [timeout DUR]",
        summary: "read one UDP datagram and who sent it (recvfrom)",
        help: "One datagram per read, whole: its edges are kept. A datagram longer than MAX is cut and the rest lost.",
        run: |s, a| Box::pin(recvfrom(s, a)),
    },
    Command {
        name: "udp",
        aliases: &[],
        usage: "udp [HOST] PORT [as NAME]",
        summary: "a UDP socket bound to PORT whose datagrams show as events",
        help: "HOST defaults to 127.0.0.1. Port 0 picks a free port. Send from it with sendto.",
        run: |s, a| Box::pin(udp(s, a)),
    },
    Command {
        name: "recv",
        aliases: &[],
        usage: "recv NAME [MAX] [timeout DUR]",
        summary: "one read of at most MAX bytes (default 1024), shown exactly as it came",
        help: "A read returns whatever has arrived, up to MAX: two sends may come as one read.\n\
               0 bytes means the peer closed its side (EOF).",
        run: |s, a| Box::pin(recv(s, a)),
    },
    Command {
        name: "expect",
        aliases: &[],
        usage: "expect NAME TEXT|/REGEX/ [timeout DUR]",
        summary: "wait until NAME receives matching data; a script fails if it does not come",
        help: "Looks at data received since the last match. /REGEX/ is a regular expression (write a space as \\s).",
        run: |s, a| Box::pin(expect(s, a)),
    },
    Command {
        name: "shutdown",
        aliases: &[],
        usage: "shutdown NAME read|write|both",
        summary: "close one direction of a connection (shutdown)",
        help: "write: sends FIN; the peer reads EOF but can still send to us. read: we stop reading.",
        run: |s, a| Box::pin(shutdown(s, a)),
    },
    Command {
        name: "close",
        aliases: &[],
        usage: "close NAME",
        summary: "close a socket",
        help: "A connection sends FIN (or a reset, if data we never read is still queued).",
        run: |s, a| Box::pin(close(s, a)),
    },
    Command {
        name: "serve",
        aliases: &[],
        usage: "serve files DIR [HOST] PORT [as NAME] [overwrite] [max-size SIZE]\nserve raw FILE [HOST] PORT [as NAME] [overwrite]",
        summary: "a file server: verified uploads into DIR and downloads from it; or a raw receiver",
        help: "files: the transfer protocol of docs/protocol.md: name, size and BLAKE3 digest on the wire; a file\n\
               appears under its name only whole and verified; names that could leave DIR are refused.\n\
               raw: like the lecture's §12 server, saves what each client sends until it closes (atomically,\n\
               but nothing can be verified). Each client is served by a task of its own.",
        run: |s, a| Box::pin(crate::files::serve(s, a)),
    },
    Command {
        name: "upload",
        aliases: &[],
        usage: "upload NAME FILE [as REMOTE_NAME] [resume]\nupload --raw NAME FILE",
        summary: "send a file to a file server, verified end to end (or raw, like the lecture)",
        help: "NAME is a connection to the server, or a `serve files` server of this shell (a connection is made).\n\
               The file is streamed with its name, size and BLAKE3 digest; the receiver checks both before it\n\
               renames the file into place. resume continues an upload that was cut off. --raw sends only the\n\
               bytes, then shuts down writing: what the lecture's server and `nc -l` expect.",
        run: |s, a| Box::pin(crate::files::upload(s, a)),
    },
    Command {
        name: "download",
        aliases: &[],
        usage: "download NAME REMOTE_NAME [as LOCAL_FILE] [overwrite]",
        summary: "fetch a file a file server offers, verified, written atomically",
        help: "An interrupted download resumes by itself next time.",
        run: |s, a| Box::pin(crate::files::download(s, a)),
    },
    Command {
        name: "write",
        aliases: &[],
        usage: "write FILE DATA",
        summary: "create (or replace) a file with DATA, to have something to send",
        help: "DATA as for send. `{tmp}` is a directory of this session's own, removed at exit.",
        run: |s, a| Box::pin(crate::files::write(s, a)),
    },
    Command {
        name: "mkdir",
        aliases: &[],
        usage: "mkdir DIR",
        summary: "create a directory (and its parents)",
        help: "`mkdir {tmp}/in` makes a directory for uploads.",
        run: |s, a| Box::pin(crate::files::mkdir(s, a)),
    },
    Command {
        name: "files",
        aliases: &[],
        usage: "files DIR",
        summary: "list a directory: names, sizes, and partial uploads kept to resume",
        help: "Working files of the transfer protocol start with .socklab- and never carry a final name.",
        run: |s, a| Box::pin(crate::files::files(s, a)),
    },
    Command {
        name: "compare",
        aliases: &["cmp"],
        usage: "compare FILE FILE",
        summary: "are two files byte-identical? (and where they first differ)",
        help: "Fails (in a script) when they differ.",
        run: |s, a| Box::pin(crate::files::compare(s, a)),
    },
    Command {
        name: "frame",
        aliases: &[],
        usage: "frame NAME raw|line|len",
        summary: "cut a connection's bytes into messages (one event each), and frame what send writes",
        help: "raw: bytes as each read returns them (TCP keeps no message edges). line: a message ends at\n\
               LF (CRLF accepted; at most 8192 bytes); send adds the LF. len: a 4-byte big-endian length,\n\
               then the message (at most 1 MiB); send adds the length. A stream that breaks its framing\n\
               stops being read in the background.",
        run: |s, a| Box::pin(frame(s, a)),
    },
    Command {
        name: "watch",
        aliases: &[],
        usage: "watch NAME on|off",
        summary: "on: read a connection in the background (events); off: read it with recv",
        help: "Connections from `listen PORT` and `connect HOST PORT` start watched; step-by-step ones do not.",
        run: |s, a| Box::pin(watch(s, a)),
    },
    Command {
        name: "sockets",
        aliases: &["ls"],
        usage: "sockets",
        summary: "list every socket: name, kind, kernel TCP state, addresses, bytes in and out",
        help: "TCP is the kernel's state (TCP_INFO). READ BY says whether data shows as events or waits for\n\
               recv. Connections this shell closed that the kernel keeps in TIME_WAIT are listed below.",
        run: |s, a| Box::pin(sockets(s, a)),
    },
    Command {
        name: "ip",
        aliases: &[],
        usage: "ip ADDR[/PREFIX]",
        summary: "what an IP address is: version, bytes, scope; for a prefix, the network's range",
        help: "IPv4 has 4 bytes, IPv6 16. Scopes: loopback, private, link-local, multicast, broadcast,\n\
               unspecified, documentation, shared, global. With /PREFIX: network, broadcast, first and last host.",
        run: |s, a| Box::pin(crate::inspect::ip(s, a)),
    },
    Command {
        name: "port",
        aliases: &[],
        usage: "port N",
        summary: "what a port number means, its well-known services, and whether it is free here",
        help: "0 = any free port (bind); 1-1023 system; 1024-49151 registered; 49152-65535 dynamic.",
        run: |s, a| Box::pin(crate::inspect::port(s, a)),
    },
    Command {
        name: "ifconfig",
        aliases: &["ipconfig", "interfaces"],
        usage: "ifconfig",
        summary: "this machine's network interfaces, their addresses and flags",
        help: "Read from the OS (getifaddrs). `lo` carries 127.0.0.1: the machine itself.",
        run: |s, a| Box::pin(crate::inspect::ifconfig(s, a)),
    },
    Command {
        name: "resolve",
        aliases: &[],
        usage: "resolve HOST",
        summary: "every address the system resolver gives for a name, in order",
        help: "The resolver reads /etc/hosts, then DNS.",
        run: |s, a| Box::pin(crate::inspect::resolve(s, a)),
    },
    Command {
        name: "ping",
        aliases: &[],
        usage: "ping HOST [PORT] [count N] [every DUR] [via icmp|tcp]",
        summary: "is a host reachable? ICMP echo where allowed, else TCP connect time to PORT",
        help: "Says which method it used and why; prints each probe and min/avg/max like ping.",
        run: |s, a| Box::pin(crate::inspect::ping(s, a)),
    },
    Command {
        name: "spawn",
        aliases: &[],
        usage: "spawn WORKLOAD... [as process|thread|task] [times N] [every DUR] [background]",
        summary: "run workloads side by side as processes (the default), threads or async tasks",
        help: "Workloads: coding (敲代码...i), music (听音乐--------i), nap, primes N. `spawn coding music` is the\n\
               lecture's multiprocessing demo. Each line shows the worker's process and thread.\n\
               In a script the job runs in the foreground and its lines come in step order (every worker's\n\
               step i before any step i+1); `background` returns at once and `wait` prints them.\n\
               On a terminal jobs run in the background and lines print as they come.",
        run: |s, a| Box::pin(crate::jobs::spawn(s, a)),
    },
    Command {
        name: "jobs",
        aliases: &[],
        usage: "jobs",
        summary: "list jobs: workers, mode, PID, thread id, state, lines so far",
        help: "A job is what one spawn started.",
        run: |s, a| Box::pin(crate::jobs::jobs(s, a)),
    },
    Command {
        name: "wait",
        aliases: &[],
        usage: "wait [JOB] [timeout DUR]",
        summary: "wait until a job (or every running job) has finished",
        help: "In a script, prints the job's lines in step order as it runs.",
        run: |s, a| Box::pin(crate::jobs::wait(s, a)),
    },
    Command {
        name: "kill",
        aliases: &[],
        usage: "kill JOB",
        summary: "stop a job's workers at once (processes are killed and reaped)",
        help: "Nothing is left running: no zombie, no orphan.",
        run: |s, a| Box::pin(crate::jobs::kill(s, a)),
    },
    Command {
        name: "measure",
        aliases: &[],
        usage: "measure",
        summary: "concurrency vs parallelism, measured now: CPU-bound and waiting work, 1 vs 2 workers",
        help: "Runs primes (CPU) and nap (waiting) with 1 worker, then 2 as processes, threads, tasks on one\n\
               thread and tasks on the multi-thread runtime; prints wall time, CPU time and speedup.",
        run: |s, a| Box::pin(crate::jobs::measure(s, a)),
    },
    Command {
        name: "repeat",
        aliases: &[],
        usage: "repeat N [every DUR] COMMAND...",
        summary: "run a command N times; {i} in it counts 0, 1, …, N-1",
        help: "The lecture's `for i in range(10): print(f'main##{i}'); time.sleep(0.1)` is\n\
               `repeat 10 every 100ms echo main##{i}`.",
        run: |s, a| Box::pin(repeat(s, a)),
    },
    Command {
        name: "trace",
        aliases: &[],
        usage: "trace on [capture|observe]\ntrace off",
        summary: "show the segments of this shell's connections (SYN, ACK, FIN, …) or the kernel states they pass",
        help: "capture (root or CAP_NET_RAW): a real capture on the loopback interface, filtered to this shell's\n\
               ports, shown after each command: flags, relative seq/ack, window, length. observe (no privilege):\n\
               each connection's kernel state after each command, with the states passed through between.\n\
               `trace on` picks capture where it may, and says when it falls back.",
        run: |s, a| Box::pin(trace(s, a)),
    },
    Command {
        name: "info",
        aliases: &[],
        usage: "info NAME",
        summary: "what the kernel knows of a TCP socket (TCP_INFO): state, rtt, window, bytes acked, …",
        help: "Read at the moment you ask; the numbers change as the connection lives.",
        run: |s, a| Box::pin(info(s, a)),
    },
    Command {
        name: "format",
        aliases: &[],
        usage: "format [text|hex|auto]",
        summary: "how received bytes are shown",
        help: "auto (the default) shows text as a quoted string and anything else as a hexdump.",
        run: |s, a| Box::pin(format(s, a)),
    },
    Command {
        name: "sleep",
        aliases: &[],
        usage: "sleep DUR",
        summary: "pause (events keep arriving)",
        help: "DUR is like 250ms, 2s or 1m.",
        run: |s, a| Box::pin(sleep(s, a)),
    },
    Command {
        name: "echo",
        aliases: &[],
        usage: "echo TEXT...",
        summary: "print text",
        help: "Prints its arguments separated by spaces.",
        run: |s, a| Box::pin(echo(s, a)),
    },
    Command {
        name: "help",
        aliases: &["?"],
        usage: "help [COMMAND]",
        summary: "list the commands, or show one in full",
        help: "Keys: Tab completes, Ctrl-C stops a waiting command, Ctrl-D quits.",
        run: |s, a| Box::pin(help(s, a)),
    },
    Command {
        name: "quit",
        aliases: &["exit"],
        usage: "quit",
        summary: "close every socket and leave",
        help: "Ctrl-D does the same.",
        run: |s, a| Box::pin(quit(s, a)),
    },
];

/// The command called `name` (or one of its aliases).
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.name == name || c.aliases.contains(&name))
}

/// The command name nearest to a mistyped one, if any is near.
pub fn nearest(name: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
        .map(|n| (strsim::damerau_levenshtein(name, n), n))
        .filter(|(d, n)| *d <= 2 && *d < n.len())
        .min()
        .map(|(_, n)| n)
}

// ----- helpers -------------------------------------------------------------

/// Takes a socket name and checks that it exists (with a suggestion when
/// it does not).
fn socket_arg(s: &Session, a: &mut Args) -> CmdResult<String> {
    let (name, span) = a.word("a socket name")?;
    if !s.lab.exists(&name) {
        let names = s.lab.names();
        let near = names
            .iter()
            .map(|n| (strsim::levenshtein(&name, n), n))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, n)| n.clone());
        let mut e = CmdError::at(span, format!("no socket named '{name}'"));
        e = match near {
            Some(n) => e.hint(format!("did you mean '{n}'? (`sockets` lists them)")),
            None if names.is_empty() => e.hint("there are no sockets yet: `socket tcp`, `listen PORT` or `connect HOST PORT` make one"),
            None => e.hint(format!("sockets: {}", names.join(", "))),
        };
        return Err(e);
    }
    Ok(name)
}

/// Runs `fut` under a time limit (the command's own, else the session's).
async fn within<T>(
    limit: Option<Duration>,
    what: String,
    fut: impl Future<Output = CmdResult<T>>,
) -> CmdResult<T> {
    match limit {
        None => fut.await,
        Some(t) => match tokio::time::timeout(t, fut).await {
            Ok(r) => r,
            Err(_) => Err(CmdError::new(
                Exit::TempFail,
                format!("{what}: gave up after {}", show_duration(t)),
            )),
        },
    }
}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Text of a token as the user wrote it (quoted strings decoded lossily).
fn text_of(t: &Token) -> String {
    match &t.kind {
        TokenKind::Word(w) => w.clone(),
        _ => String::from_utf8_lossy(&t.bytes()).into_owned(),
    }
}

fn port_note(asked: u16, got: Option<std::net::SocketAddr>) -> String {
    match got {
        Some(a) if asked == 0 => format!(" (port 0: the OS picked free port {})", a.port()),
        _ => String::new(),
    }
}

// ----- step by step --------------------------------------------------------

async fn socket(s: &mut Session, mut a: Args) -> CmdResult {
    let name = a.as_name()?;
    let (proto, _) = a.choice("a protocol", &["tcp", "udp"])?;
    let proto = if proto == "udp" {
        Proto::Udp
    } else {
        Proto::Tcp
    };
    let family = if a.keyword("v6") {
        Family::V6
    } else {
        a.keyword("v4");
        Family::V4
    };
    a.done()?;
    let info = s.lab.socket(proto, family, name.as_deref())?;
    s.say(format!("{} = {}", info.name, render::py_socket(&info)));
    Ok(())
}

fn opt_arg(a: &mut Args) -> CmdResult<SockOpt> {
    let (w, span) = a.word("an option")?;
    w.parse::<SockOpt>().map_err(|()| {
        let names: Vec<_> = SockOpt::ALL.iter().map(|o| o.name()).collect();
        CmdError::at(span, format!("unknown option '{w}'"))
            .hint(format!("options: {}", names.join(", ")))
    })
}

async fn set(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let opt = opt_arg(&mut a)?;
    let t = a.token("a value")?;
    a.done()?;
    let w = t.word().unwrap_or("");
    let value = match opt.kind() {
        OptKind::Bool => match w.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => OptValue::Bool(true),
            "off" | "false" | "no" | "0" => OptValue::Bool(false),
            _ => {
                return Err(CmdError::at(
                    t.span,
                    format!("{opt} is on or off, not '{w}'"),
                ))
            }
        },
        OptKind::Int => OptValue::Int(number_of(&t, &format!("a value for {opt}"), 1..=(1 << 30))?),
        OptKind::Linger => {
            if w.eq_ignore_ascii_case("off") {
                OptValue::Linger(None)
            } else {
                OptValue::Linger(Some(duration_of(&t)?))
            }
        }
    };
    s.lab.set_opt(&name, opt, value)?;
    let info = s.lab.info(&name)?;
    s.say(format!("{name}: {} = {value}", opt.c_name()));
    let before_bind = matches!(
        opt,
        SockOpt::ReuseAddr | SockOpt::ReusePort | SockOpt::V6Only
    );
    if before_bind && (info.role != Role::Fresh || info.state == "bound") {
        s.say(format!(
            "   note: {name} is already bound; {opt} only affects a bind that comes after it, so this changes nothing now"
        ));
    }
    Ok(())
}

async fn get(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let opt = opt_arg(&mut a)?;
    a.done()?;
    let v = s.lab.get_opt(&name, opt)?;
    s.say(format!("{name}: {} = {v}", opt.c_name()));
    Ok(())
}

async fn bind(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let host = a.token("a host")?;
    let pt = a.token("a port")?;
    a.done()?;
    let port = port_of(&pt)?;
    let addr = resolve(&host, port).await?;
    let info = s
        .lab
        .bind(&name, addr)
        .map_err(|e| CmdError::from(e).os_at(pt.span))?;
    let local = info.local.unwrap_or(addr);
    s.say(format!(
        "{name}: bound to {}{}",
        render::addr(&local),
        port_note(port, info.local)
    ));
    Ok(())
}

async fn listen(s: &mut Session, mut a: Args) -> CmdResult {
    // `listen NAME [BACKLOG]`: the step-by-step listen() call.
    if let Some(w) = a.peek_word() {
        if s.lab.exists(w) {
            let name = socket_arg(s, &mut a)?;
            let backlog = match a.peek() {
                Some(_) => {
                    let t = a.token("a backlog")?;
                    number_of(&t, "a backlog", 0..=65535)? as i32
                }
                None => 128,
            };
            a.done()?;
            let info = s.lab.listen(&name, backlog)?;
            let at = info.local.map(|l| render::addr(&l)).unwrap_or_default();
            s.say(format!("{name}: listening on {at} (backlog {backlog}); clients wait in the queue until `accept {name}`"));
            return Ok(());
        }
    }
    // `listen [HOST] PORT [backlog N] [as NAME]`: a server.
    let name = a.as_name()?;
    let how = match a.option("mode", "iterative, thread or task")? {
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
    let port = addr.port();
    let info = s
        .lab
        .serve(addr, backlog, name.as_deref(), how)
        .map_err(|e| CmdError::from(e).os_at(pt.span))?;
    let local = info.local.unwrap_or(addr);
    s.say(format!(
        "{}: listening on {}{}; clients become {}.1, {}.2, …",
        info.name,
        render::addr(&local),
        port_note(port, info.local),
        info.name,
        info.name
    ));
    match how {
        ServeMode::Iterative => s.say(format!(
            "   iterative: one client at a time; the next waits in the backlog until `close {}.N` (the lecture's loop)",
            info.name
        )),
        ServeMode::Thread => s.say("   thread: one OS thread reads each client"),
        ServeMode::Task => {}
    }
    if !local.ip().is_loopback() {
        let what = if local.ip().is_unspecified() {
            "every interface of this machine"
        } else {
            "a non-loopback address"
        };
        s.say(format!(
            "   note: {} is {what}: other machines can connect to it",
            local.ip()
        ));
    }
    Ok(())
}

async fn accept(s: &mut Session, mut a: Args) -> CmdResult {
    let conn = a.as_name()?;
    let limit = a.timeout()?.or(s.wait_limit);
    let name = socket_arg(s, &mut a)?;
    a.done()?;
    let lab = s.lab.clone();
    let info = within(limit, format!("accept {name}"), async {
        Ok(lab.accept(&name, conn.as_deref()).await?)
    })
    .await?;
    let peer = info.peer.map(|p| render::addr(&p)).unwrap_or_default();
    if info.mode == Mode::Watched {
        s.say(format!(
            "{name}: next client is {} (from {peer})",
            info.name
        ));
    } else {
        s.say(format!("{name}: accepted {} from {peer}", info.name));
        s.say(format!("{} = {}", info.name, render::py_socket(&info)));
    }
    Ok(())
}

async fn connect(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let first = a.peek_word().map(str::to_string);
    let fresh = first
        .as_deref()
        .and_then(|w| s.lab.info(w).ok())
        .filter(|i| matches!(i.role, Role::Fresh | Role::Datagram));
    if let Some(info) = fresh {
        // `connect NAME HOST PORT` / `connect NAME LISTENER`.
        let name = info.name;
        a.token("a socket name")?;
        if let Some(n) = a.as_name()? {
            return Err(CmdError::usage(format!(
                "{name} has a name already; `as {n}` applies to new connections"
            )));
        }
        let to = target(s, &mut a).await?;
        a.done()?;
        let lab = s.lab.clone();
        // The connect enforces the limit itself, and keeps the socket (still
        // connecting, SYN_SENT) when it runs out, as a real one would.
        let info = lab.connect(&name, to, limit).await?;
        say_connected(s, &info);
        return Ok(());
    }
    let name = a.as_name()?;
    let to = target(s, &mut a).await?;
    a.done()?;
    let lab = s.lab.clone();
    let info = lab.dial(to, name.as_deref(), limit).await?;
    say_connected(s, &info);
    Ok(())
}

fn say_connected(s: &Session, info: &socklab_net::SocketInfo) {
    let peer = info.peer.map(|p| render::addr(&p)).unwrap_or_default();
    let local = info.local.map(|p| render::addr(&p)).unwrap_or_default();
    s.say(format!("{}: connected to {peer} from {local}", info.name));
    if info.role == Role::Datagram {
        s.say("   UDP: no packet was sent; connect only fixes the peer for send and recv");
    }
}

/// `HOST PORT`, or the name of a socket of this shell with a port.
async fn target(s: &Session, a: &mut Args) -> CmdResult<std::net::SocketAddr> {
    if a.len() == 1 {
        if let Some(w) = a.peek_word() {
            if s.lab.exists(w) {
                let (w, span) = a.word("a listener")?;
                return s
                    .lab
                    .connect_addr_of(&w)
                    .map_err(|e| CmdError::from(e).or_at(span));
            }
            if w.parse::<u16>().is_err() {
                let (w, span) = a.word("a host")?;
                return Err(CmdError::at(
                    span,
                    format!("no socket named '{w}', and a host needs a PORT after it"),
                ));
            }
        }
    }
    let host = a.token("a host (or a listener's name)")?;
    let pt = a.token("a port")?;
    let port = port_of(&pt)?;
    resolve(&host, port).await
}

// ----- data ----------------------------------------------------------------

/// The bytes of a DATA argument: a word, a quoted string, `hex:...`, or
/// `fill:SIZE` (SIZE bytes of `x`, for sizes too long to type).
pub fn data_of(t: &Token) -> CmdResult<Vec<u8>> {
    if let Some(size) = t.word().and_then(|w| w.strip_prefix("fill:")) {
        let n = crate::parse::size(size).map_err(|m| CmdError::at(t.span, m))?;
        if n > 64 << 20 {
            return Err(CmdError::at(t.span, "fill: at most 64M bytes"));
        }
        return Ok(vec![b'x'; n as usize]);
    }
    Ok(t.bytes())
}

async fn sendto(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let data = a.take_last("the data to send")?;
    let to = target(s, &mut a).await?;
    a.done()?;
    let bytes = data_of(&data)?;
    let lab = s.lab.clone();
    let n = within(s.wait_limit, format!("sendto {name}"), async {
        Ok(lab.sendto(&name, to, &bytes).await?)
    })
    .await
    .map_err(|e| e.os_at(data.span))?;
    s.say(format!(
        "{name} -> {}: {}",
        render::addr(&to),
        render::payload(&bytes, n, s.format())
    ));
    Ok(())
}

async fn recvfrom(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let name = socket_arg(s, &mut a)?;
    let max = match a.peek() {
        Some(_) => {
            let t = a.token("a size")?;
            number_of(&t, "a size", 1..=65535)? as usize
        }
        None => 65535,
    };
    a.done()?;
    let lab = s.lab.clone();
    let d = within(limit, format!("recvfrom {name}"), async {
        Ok(lab.recvfrom(&name, max).await?)
    })
    .await?;
    s.say(format!(
        "{name} <- recvfrom({max}) from {}: {}",
        render::addr(&d.from),
        render::payload(&d.data, d.data.len(), s.format())
    ));
    if d.size > d.data.len() {
        s.say(format!(
            "   the datagram had {} bytes; {} did not fit and are lost (a datagram is read whole, once)",
            d.size,
            d.size - d.data.len()
        ));
    }
    Ok(())
}

async fn udp(s: &mut Session, mut a: Args) -> CmdResult {
    let name = a.as_name()?;
    let (addr, pt) = host_port(&mut a).await?;
    a.done()?;
    let port = addr.port();
    let info = s
        .lab
        .udp_serve(addr, name.as_deref())
        .map_err(|e| CmdError::from(e).os_at(pt.span))?;
    let local = info.local.unwrap_or(addr);
    s.say(format!(
        "{}: receiving UDP on {}{}; each datagram shows as an event",
        info.name,
        render::addr(&local),
        port_note(port, info.local)
    ));
    if !local.ip().is_loopback() {
        s.say(format!(
            "   note: {} is not loopback: other machines can send to it",
            local.ip()
        ));
    }
    Ok(())
}

async fn send(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let data = a.token("the data to send")?;
    a.done()?;
    let bytes = data_of(&data)?;
    let bytes = match s.lab.framing(&name) {
        Ok(f) if f != Framing::Raw => s
            .lab
            .frame(&name, &bytes)
            .map_err(|e| CmdError::from(e).or_at(data.span))?,
        _ => bytes,
    };
    let lab = s.lab.clone();
    let n = within(s.wait_limit, format!("send {name}"), async {
        Ok(lab.send(&name, &bytes).await?)
    })
    .await?;
    s.say(format!(
        "{name} -> {}",
        render::payload(&bytes, n, s.format())
    ));
    Ok(())
}

async fn recv(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let name = socket_arg(s, &mut a)?;
    let max = match a.peek() {
        Some(_) => {
            let t = a.token("a size")?;
            number_of(&t, "a size", 1..=(16 << 20))? as usize
        }
        None => 1024,
    };
    a.done()?;
    let lab = s.lab.clone();
    let got = within(limit, format!("recv {name}"), async {
        Ok(lab.recv(&name, max).await?)
    })
    .await?;
    match got {
        ReadOutcome::Data(d) => s.say(format!(
            "{name} <- recv({max}): {}",
            render::payload(&d, d.len(), s.format())
        )),
        ReadOutcome::Eof => s.say(format!(
            "{name} <- recv({max}): 0 bytes: the peer closed its side (EOF)"
        )),
    }
    Ok(())
}

/// Finds a match in received bytes; returns where the match ends.
type Matcher = Box<dyn FnMut(&[u8]) -> Option<usize> + Send>;

async fn expect(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let name = socket_arg(s, &mut a)?;
    let pat = a.token("the text or /regex/ to wait for")?;
    a.done()?;
    let (shown, matcher): (String, Matcher) = match &pat.kind {
        TokenKind::Word(w) if w.len() >= 2 && w.starts_with('/') && w.ends_with('/') => {
            let re = regex::bytes::Regex::new(&w[1..w.len() - 1]).map_err(|e| {
                // The regex crate explains on several lines; the last says what is wrong.
                let why = e.to_string();
                let why = why
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
                    .to_string();
                CmdError::at(pat.span, format!("bad regular expression: {why}"))
            })?;
            (
                w.clone(),
                Box::new(move |b: &[u8]| re.find(b).map(|m| m.end())),
            )
        }
        _ => {
            let needle = pat.bytes();
            if needle.is_empty() {
                return Err(CmdError::at(pat.span, "expect needs something to wait for"));
            }
            (
                render::quote(&needle, 80),
                Box::new(move |b: &[u8]| {
                    b.windows(needle.len())
                        .position(|w| w == needle.as_slice())
                        .map(|i| i + needle.len())
                }),
            )
        }
    };
    let lab = s.lab.clone();
    let what = format!("expect {name} {shown}");
    let got = within(limit, what.clone(), async {
        lab.expect(&name, matcher)
            .await
            .map_err(|e| CmdError::new(Exit::Data, e.to_string()))
    })
    .await
    .map_err(|mut e| {
        if e.exit == Exit::TempFail {
            e.exit = Exit::Data;
            let seen = s.lab.unmatched(&name, 200).unwrap_or_default();
            e = e.hint(if seen.is_empty() {
                "nothing arrived since the last match".to_string()
            } else {
                format!("arrived since the last match: {}", render::quote(&seen, 80))
            });
        }
        e
    })?;
    s.say(format!(
        "{name}: matched {shown} ({} taken)",
        render::payload(&[], got.len(), s.format())
    ));
    Ok(())
}

async fn shutdown(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let (how, _) = a.choice("a direction", &["read", "write", "both"])?;
    a.done()?;
    let (how, said) = match how {
        "read" => (Shutdown::Read, "shut down reading"),
        "write" => (
            Shutdown::Write,
            "shut down writing: FIN sent; the peer reads EOF but may still send",
        ),
        _ => (Shutdown::Both, "shut down both directions: FIN sent"),
    };
    let lab = s.lab.clone();
    within(s.wait_limit, format!("shutdown {name}"), async {
        Ok(lab.shutdown(&name, how).await?)
    })
    .await?;
    s.say(format!("{name}: {said}"));
    Ok(())
}

async fn close(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    a.done()?;
    let lab = s.lab.clone();
    let info = within(s.wait_limit, format!("close {name}"), async {
        Ok(lab.close(&name).await?)
    })
    .await?;
    let what = match info.role {
        Role::Listener => "closed; no longer listening (its accepted connections stay open)",
        Role::Fresh | Role::Stream | Role::Datagram | Role::Program => "closed",
    };
    s.say(format!("{name}: {what}"));
    Ok(())
}

async fn frame(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let (f, _) = a.choice("a framing", &Framing::NAMES)?;
    a.done()?;
    let framing: Framing = f
        .parse()
        .map_err(|_| CmdError::usage(format!("unknown framing '{f}'")))?;
    s.lab.set_framing(&name, framing)?;
    s.say(match framing {
        Framing::Raw => format!("{name}: raw: each read shows as it comes; send writes the bytes as given"),
        Framing::Line { max } => {
            format!("{name}: line: one message per line (at most {max} bytes); send adds \"\\n\"")
        }
        Framing::Len { max } => format!(
            "{name}: len: a 4-byte length, then the message (at most {max} bytes); send adds the length"
        ),
    });
    Ok(())
}

async fn watch(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let (on, _) = a.choice("on or off", &["on", "off"])?;
    a.done()?;
    s.lab.set_watch(&name, on == "on").await?;
    let info = s.lab.info(&name)?;
    s.say(match info.mode {
        Mode::Watched => format!("{name}: read in the background; data shows as events"),
        Mode::Manual => format!("{name}: read on request; use recv"),
    });
    Ok(())
}

async fn sockets(s: &mut Session, a: Args) -> CmdResult {
    a.done()?;
    s.say(render::sockets(&s.lab.list()));
    let lingering = s.lab.lingering();
    if !lingering.is_empty() {
        let rows: Vec<Vec<String>> = lingering
            .iter()
            .map(|(name, row)| {
                vec![
                    name.clone(),
                    render::addr(&row.local),
                    render::addr(&row.remote),
                    format!("TIME_WAIT: {name} closed first, so its side holds the port"),
                ]
            })
            .collect();
        s.say("closed, but still held by the kernel:");
        s.say(render::table(&["CLOSED", "LOCAL", "PEER", "WHY"], &rows));
    }
    Ok(())
}

async fn trace(s: &mut Session, mut a: Args) -> CmdResult {
    let (on, _) = a.choice("on or off", &["on", "off"])?;
    if on == "off" {
        a.done()?;
        s.lab.trace_off();
        s.say("trace: off");
        return Ok(());
    }
    let wish = match a.peek() {
        Some(_) => match a.choice("a mode", &["capture", "observe"])?.0 {
            "capture" => TraceWish::Capture,
            _ => TraceWish::Observe,
        },
        // Tests pin the mode so a transcript does not depend on privilege.
        None => match std::env::var("SOCKLAB_TRACE").as_deref() {
            Ok("capture") => TraceWish::Capture,
            Ok("observe") => TraceWish::Observe,
            _ => TraceWish::Auto,
        },
    };
    a.done()?;
    let (mode, why) = s.lab.trace_on(wish)?;
    match mode {
        TraceMode::Capture => s.say(
            "trace: capturing on the loopback interface (lo), this shell's ports only; segments show after each command",
        ),
        TraceMode::Observe => {
            if let Some(why) = why {
                s.say(format!("trace: cannot capture ({why}); observing instead"));
            }
            s.say(
                "trace: observing: each connection's kernel state (TCP_INFO, /proc/net/tcp) after each command, \
                 and the states TCP passes through between. An observation, not a capture: no segments are seen.",
            );
        }
    }
    Ok(())
}

async fn info(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    a.done()?;
    let info = s.lab.tcp_info(&name)?;
    let rows: Vec<Vec<String>> = info
        .summary()
        .into_iter()
        .map(|f| {
            vec![
                f.name.to_string(),
                render::info_value(&f.value),
                f.meaning.to_string(),
            ]
        })
        .collect();
    s.say(format!("{name}: TCP_INFO, as the kernel reports it now"));
    s.say(render::table(&["FIELD", "VALUE", "MEANING"], &rows));
    Ok(())
}

async fn format(s: &mut Session, mut a: Args) -> CmdResult {
    if a.len() > 0 {
        let (f, _) = a.choice("a format", &["auto", "text", "hex"])?;
        a.done()?;
        s.set_format(match f {
            "text" => Format::Text,
            "hex" => Format::Hex,
            _ => Format::Auto,
        });
    }
    s.say(format!("format: {}", s.format().name()));
    Ok(())
}

async fn repeat(s: &mut Session, mut a: Args) -> CmdResult {
    let t = a.token("a count")?;
    let n = number_of(&t, "a count", 1..=100_000)?;
    let every = if a.peek_word() == Some("every") {
        a.token("every")?;
        let d = a.token("a duration")?;
        Some(duration_of(&d)?)
    } else {
        None
    };
    let Some(command) = a.rest_text().map(str::to_string) else {
        return Err(a
            .token("a command")
            .err()
            .unwrap_or_else(|| CmdError::usage("missing a command")));
    };
    if command.split_whitespace().next() == Some("repeat") {
        return Err(CmdError::usage("repeat inside repeat is not allowed"));
    }
    let mut ticks = every.map(|d| {
        let mut i = tokio::time::interval(d);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    for i in 0..n {
        if let Some(t) = ticks.as_mut() {
            t.tick().await;
        }
        let line = s.expand(&command.replace("{i}", &i.to_string()));
        Box::pin(s.execute(&line)).await?;
    }
    Ok(())
}

async fn sleep(_s: &mut Session, mut a: Args) -> CmdResult {
    let t = a.token("a duration")?;
    a.done()?;
    tokio::time::sleep(duration_of(&t)?).await;
    Ok(())
}

async fn echo(s: &mut Session, mut a: Args) -> CmdResult {
    let words: Vec<String> = a.rest().iter().map(text_of).collect();
    s.say(words.join(" "));
    Ok(())
}

async fn help(s: &mut Session, mut a: Args) -> CmdResult {
    if a.len() == 0 {
        let rows: Vec<Vec<String>> = COMMANDS
            .iter()
            .map(|c| vec![c.name.to_string(), c.summary.to_string()])
            .collect();
        s.say(render::table(&["COMMAND", "WHAT IT DOES"], &rows));
        s.say("`help COMMAND` shows its forms. Tab completes; Ctrl-C stops a waiting command; Ctrl-D quits.");
        return Ok(());
    }
    let (w, span) = a.word("a command")?;
    a.done()?;
    let c = find(&w).ok_or_else(|| {
        let e = CmdError::at(span, format!("unknown command '{w}'"));
        match nearest(&w) {
            Some(n) => e.hint(format!("did you mean '{n}'?")),
            None => e,
        }
    })?;
    s.say(describe(c));
    Ok(())
}

/// A command in full: usage, summary, help, aliases.
pub fn describe(c: &Command) -> String {
    let mut out = String::new();
    for u in c.usage.lines() {
        out.push_str(&format!("usage: {u}\n"));
    }
    out.push_str(c.summary);
    out.push('\n');
    for l in c.help.lines() {
        out.push_str(l.trim_start());
        out.push('\n');
    }
    if !c.aliases.is_empty() {
        out.push_str(&format!("also: {}\n", c.aliases.join(", ")));
    }
    out.pop();
    out
}

async fn quit(s: &mut Session, a: Args) -> CmdResult {
    a.done()?;
    let _ = s.jobs.kill_all().await;
    let n = s.lab.close_all().await;
    s.quit = true;
    s.say(format!(
        "closed {n} socket{}; bye",
        if n == 1 { "" } else { "s" }
    ));
    Ok(())
}

/// `docs/commands.md`, generated from the table.
#[cfg(test)]
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Command reference\n\n\
         Generated from the shell's command table (`shell/commands.rs`); a test fails when this file\n\
         and the table disagree. Regenerate with `UPDATE_DOCS=1 cargo test --workspace commands_md`.\n\n\
         Arguments: DATA is a word, a quoted string with escapes, or `hex:...`; DUR is like `250ms`, `2s`, `1m`;\n\
         sizes are like `1024`, `64K`, `1M`; HOST is `127.0.0.1`, `::1` or a name like `localhost`.\n\
         In a script, a waiting command without `timeout` gives up after `--wait` (10s by default).\n\n\
         In any line, `{NAME.port}`, `{NAME.host}` and `{NAME.addr}` stand for socket NAME's local port,\n\
         host and address. In a script, a line starting with `!` must fail: its error becomes part of the\n\
         transcript and the run goes on (if it succeeds, the run stops).\n\n",
    );
    for c in COMMANDS {
        out.push_str(&format!(
            "## {}\n\n```\n{}\n```\n\n{}\n\n",
            c.name, c.usage, c.summary
        ));
        for l in c.help.lines() {
            out.push_str(l.trim_start());
            out.push('\n');
        }
        if !c.aliases.is_empty() {
            out.push_str(&format!(
                "\nAlso: {}\n",
                c.aliases
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.push('\n');
    }
    out.pop();
    out
}

/// Words that may follow a command, for completion.
pub const KEYWORDS: &[&str] = &[
    "coding",
    "music",
    "nap",
    "primes",
    "process",
    "thread",
    "task",
    "times",
    "background",
    "mode",
    "iterative",
    "tcp",
    "udp",
    "count",
    "every",
    "via",
    "icmp",
    "v4",
    "v6",
    "as",
    "timeout",
    "backlog",
    "read",
    "write",
    "both",
    "on",
    "off",
    "text",
    "hex",
    "auto",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_unique() {
        let mut all: Vec<&str> = COMMANDS
            .iter()
            .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn every_usage_starts_with_its_name() {
        for c in COMMANDS {
            for u in c.usage.lines() {
                assert!(u.starts_with(c.name), "{u}");
            }
        }
    }

    #[test]
    fn suggests_the_nearest_command() {
        assert_eq!(nearest("lsiten"), Some("listen"));
        assert_eq!(nearest("conect"), Some("connect"));
        assert_eq!(nearest("xyzzy"), None);
    }

    /// docs/commands.md is the table, rendered; it cannot drift.
    #[test]
    fn commands_md_matches_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/commands.md");
        let want = reference_markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/commands.md is out of date: run UPDATE_DOCS=1 cargo test commands_md"
        );
    }

    #[test]
    fn option_names_are_complete() {
        for o in SockOpt::ALL {
            assert!(COMMANDS[1].help.contains(o.name()), "{o}");
        }
    }
}
