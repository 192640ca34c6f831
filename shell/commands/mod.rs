//! The command table: every command's name, usage, help and handler.
//! Dispatch, `help`, completion, hints and `docs/commands.md` all read it.
//! Adding a command is one entry here and one handler in the file of its
//! group:
//!
//! - `sockets`: sockets step by step and practical, `watch`, `sockets`;
//! - `data`: `send`, `recv`, `expect`, `frame`, `sendto`, `recvfrom`;
//! - `observe`: `trace`, `info`;
//! - `log`: traffic logs (`log FILE`, `log off`);
//! - `files`: file servers, transfers and small file commands;
//! - `inspect`: `ip`, `port`, `ifconfig`, `resolve`, `ping`;
//! - `jobs`: `spawn`, `jobs`, `wait`, `kill`, `measure`, `repeat`;
//! - `session`: `format`, `sleep`, `echo`, `quit`;
//! - `relay`: `relay`, `fault`, `chat` (relays with faults, the chat broker);
//! - `tls`: `connect … tls`, `listen … tls`, `starttls`, `tls export`
//!   (`connect` and `listen` pass through it to `sockets` without `tls`);
//! - `lessons`: `lang`, `lessons`, `lesson` (the lessons, guided, in Chinese
//!   and English);
//! - `hosts`: the classroom: `host`, `hosts`, `link` (`on` is here, beside
//!   the table it runs its command through);
//! - `bench`: `bench serve|stream|rtt|connect|hold` (socklab measures
//!   itself);
//!
//! `common` holds what several groups share; `help` lives here, with the
//! table it shows.

mod bench;
mod common;
mod data;
mod files;
mod hosts;
mod inspect;
mod jobs;
mod lessons;
mod log;
mod observe;
mod relay;
mod session;
mod sockets;
mod tls;
mod unix;

pub use bench::hold_child_if_requested;

use crate::args::{Args, CmdError, CmdResult};
use crate::dispatch::{self, Command};
use crate::render;
use crate::session::Session;

/// Every command, in the order `help` lists them.
pub static COMMANDS: &[Command] = &[
    Command {
        name: "socket",
        aliases: &[],
        usage: "socket tcp|udp [v4|v6] [as NAME]\nsocket unix [stream|dgram] [as NAME]",
        summary: "create a socket, like Python's socket.socket(AF_INET, SOCK_STREAM)",
        help: "Creates an unbound TCP (SOCK_STREAM) or UDP (SOCK_DGRAM) socket and prints it the way Python does.\n\
               TCP: set options, bind, listen/accept (server) or connect (client), step by step.\n\
               UDP: bind (receiver), sendto/recvfrom; or connect, then send/recv.\n\
               unix: an AF_UNIX socket (stream by default, or dgram): bind it to a path or unix:@NAME, then as TCP or UDP.",
        run: |s, a| Box::pin(sockets::socket(s, a)),
    },
    Command {
        name: "set",
        aliases: &["setsockopt"],
        usage: "set NAME OPTION VALUE",
        summary: "set a socket option (setsockopt)",
        help: "Options: reuseaddr, reuseport, nodelay, keepalive, v6only, broadcast (on|off); rcvbuf, sndbuf (bytes, like 64K);\n\
               ttl (hops, 1 to 255); linger (off, or a time like 5s; 0s makes close send a reset).\n\
               On a lab host's UDP socket: multicast_ttl (0 to 255), multicast_loop (on|off), multicast_if (an address).\n\
               reuseaddr, reuseport and v6only matter only when set before bind.",
        run: |s, a| Box::pin(sockets::set(s, a)),
    },
    Command {
        name: "get",
        aliases: &["getsockopt"],
        usage: "get NAME OPTION",
        summary: "read a socket option (getsockopt)",
        help: "Shows the option's value as the kernel reports it (Linux doubles rcvbuf/sndbuf).",
        run: |s, a| Box::pin(sockets::get(s, a)),
    },
    Command {
        name: "bind",
        aliases: &[],
        usage: "bind NAME HOST PORT\nbind NAME [unix:]PATH\nbind NAME unix:@NAME",
        summary: "give a socket its local address (bind)",
        help: "Port 0 lets the OS pick a free port. HOST 127.0.0.1 is reachable from this machine only.\n\
               A UNIX socket binds to a PATH (the bind makes a socket file there, at most 107 bytes; socklab removes the\n\
               files it made when the socket closes) or to an abstract name unix:@NAME (Linux: no file at all).",
        run: |s, a| Box::pin(sockets::bind(s, a)),
    },
    Command {
        name: "listen",
        aliases: &[],
        usage: "listen NAME [BACKLOG]\nlisten [HOST] PORT [backlog N] [mode iterative|thread|task] [as NAME]\nlisten [HOST] PORT [backlog N] [as NAME] exec PROGRAM [ARGS…]\nlisten unix:PATH [backlog N] [mode …] [as NAME] [exec PROGRAM …]\nlisten [HOST] PORT tls [cert FILE key FILE | certout FILE] [alpn P,…] [mode iterative|task] [as NAME]",
        summary: "listen on a socket, or start a server that accepts every client",
        help: "With a socket's NAME: the listen() call; clients then wait in the accept queue until `accept`.\n\
               With a PORT: socket + bind + listen, and every client is accepted in the background and named\n\
               NAME.1, NAME.2, …; their data shows as events. HOST defaults to 127.0.0.1. Port 0 picks a free port.\n\
               mode: task (default, async), thread (an OS thread per client), or iterative (one client at a time,\n\
               like the lecture's loop: the next is accepted after `close NAME.N`; meanwhile it waits in the backlog).\n\
               exec: each client is wired to its own run of PROGRAM (its bytes are the program's stdin, the program's\n\
               stdout goes back), as `ncat --exec` does; `listen 0 exec cat` is an echo server. Starts and exits are events.\n\
               unix:PATH listens on a UNIX socket file instead (unix:@NAME: an abstract name); a path where a stale socket\n\
               file lies is reported, never removed for you.\n\
               tls: every client does a TLS handshake first (within 10s); it becomes NAME.k once done, and one line says\n\
               what was agreed. Without `cert FILE key FILE` the session's own certificate serves (localhost, 127.0.0.1,\n\
               ::1), signed by a CA made for the session; `certout FILE` writes that CA for `curl --cacert FILE`.",
        run: |s, a| Box::pin(tls::listen(s, a)),
    },
    Command {
        name: "accept",
        aliases: &[],
        usage: "accept NAME [as CONN] [timeout DUR]",
        summary: "take one client from a listener's queue (accept)",
        help: "Waits for a client if none is queued. The new connection is read with `recv`.\n\
               On a server from `listen PORT` (which accepts by itself), waits until its next client is accepted.",
        run: |s, a| Box::pin(sockets::accept(s, a)),
    },
    Command {
        name: "connect",
        aliases: &[],
        usage: "connect NAME HOST PORT [timeout DUR]\nconnect NAME LISTENER [timeout DUR]\nconnect HOST PORT [as NAME] [timeout DUR]\nconnect LISTENER [as NAME] [timeout DUR]\nconnect [NAME] unix:PATH|unix:@NAME [as NAME]\nconnect HOST PORT tls [sni NAME] [alpn P,…] [ca FILE|session | insecure] [as NAME] [timeout DUR]",
        summary: "connect a socket, or open a new connection whose data shows as events",
        help: "With the NAME of a socket from `socket`: the connect() call; read it with `recv`.\n\
               Otherwise a new connection is made and its data arrives as events.\n\
               LISTENER is a listening socket of this shell (no need to type its port).\n\
               unix:PATH (or unix:@NAME) connects a UNIX stream socket; `info NAME` then shows the peer's pid, uid, gid.\n\
               tls: a TLS handshake follows the connect (within the timeout, else 10s), and one line says what was agreed\n\
               and who the server is. The certificate is checked against the system's CAs and the host as typed (sni NAME\n\
               to ask for another name); `ca FILE` trusts the CAs in FILE, `ca session` this shell's own, `insecure` none.",
        run: |s, a| Box::pin(tls::connect(s, a)),
    },
    Command {
        name: "starttls",
        aliases: &[],
        usage: "starttls NAME [sni NAME] [alpn P,…] [ca FILE|session | insecure] [cert FILE key FILE] [timeout DUR]",
        summary: "upgrade a connection to TLS in place (SMTP, IMAP, FTP, PostgreSQL do this after a plain-text start)",
        help: "A connection a server accepted plays the TLS server (cert FILE key FILE, or the session's certificate); one that\n\
               connected plays the client (sni, alpn, ca, insecure as for `connect … tls`). Its reader stops first, so no\n\
               byte of the handshake is taken for data; a client hello that arrived already starts the server's handshake.\n\
               When the other end is a connection of this shell too, both ends are upgraded together.",
        run: |s, a| Box::pin(tls::starttls(s, a)),
    },
    Command {
        name: "tls",
        aliases: &[],
        usage: "tls export FILE",
        summary: "write this session's CA certificate (PEM) to FILE, for other programs to trust",
        help: "`listen … tls` without a certificate uses one the session's CA signed; `curl --cacert FILE` and\n\
               `openssl s_client -CAfile FILE` then trust it.",
        run: |s, a| Box::pin(tls::tls(s, a)),
    },
    Command {
        name: "exec",
        aliases: &[],
        usage: "exec PROGRAM [ARGS…] [as NAME]",
        summary: "run a program whose stdin and stdout are a stream of this shell (a tube, like a connection)",
        help: "The program's stdout arrives as events (`NAME <- …`), its stderr as `NAME <- stderr: …`; send writes to its stdin.\n\
               expect, frame and recv (after `watch NAME off`) work on it as on a connection; `sockets` lists it with its pid.\n\
               `shutdown NAME write` closes its stdin. `close NAME` closes its stdin, waits for it to end (SIGTERM after 2s,\n\
               then SIGKILL) and reports how it ended. A trailing `as NAME` names it; quote an argument that is the word as.",
        run: |s, a| Box::pin(sockets::exec(s, a)),
    },
    Command {
        name: "send",
        aliases: &["sendall"],
        usage: "send NAME DATA",
        summary: "write all of DATA (like sendall) and report the bytes written",
        help: "DATA is a word, a quoted string (\"a\\n\" with escapes \\n \\r \\t \\\\ \\\" \\' \\0 \\xNN \\u{...}),\n\
               bytes as hex:48656c6c6f, or fill:SIZE (SIZE bytes of 'x'). Text is sent as UTF-8.\n\
               On a stream, fill: goes up to 16G, written from a 1 MiB buffer (elsewhere, and with framing, 64M);\n\
               a big one may need `timeout DUR`. On a connected UDP socket, send is one datagram.",
        run: |s, a| Box::pin(data::send(s, a)),
    },
    Command {
        name: "sendto",
        aliases: &[],
        usage: "sendto NAME HOST PORT DATA\nsendto NAME TARGET DATA\nsendto NAME unix:PATH|unix:@NAME DATA",
        summary: "send one UDP datagram to an address (sendto)",
        help: "TARGET is a UDP socket of this shell. DATA as for send; fill:SIZE sends SIZE bytes of 'x'.\n\
               The largest IPv4 UDP payload is 65507 bytes; more fails with 'Message too long'.\n\
               From a `socket unix dgram`, the address is unix:PATH or unix:@NAME.",
        run: |s, a| Box::pin(data::sendto(s, a)),
    },
    Command {
        name: "recvfrom",
        aliases: &[],
        usage: "recvfrom NAME [MAX] [timeout DUR]",
        summary: "read one UDP datagram and who sent it (recvfrom)",
        help: "One datagram per read, whole: its edges are kept. A datagram longer than MAX is cut and the rest lost.\n\
               On a UNIX datagram socket the sender is a path, @NAME, or (unnamed) when it never bound.",
        run: |s, a| Box::pin(data::recvfrom(s, a)),
    },
    Command {
        name: "udp",
        aliases: &[],
        usage: "udp [HOST] PORT [as NAME]",
        summary: "a UDP socket bound to PORT whose datagrams show as events",
        help: "HOST defaults to 127.0.0.1. Port 0 picks a free port. Send from it with sendto.",
        run: |s, a| Box::pin(sockets::udp(s, a)),
    },
    Command {
        name: "recv",
        aliases: &[],
        usage: "recv NAME [MAX] [timeout DUR]",
        summary: "one read of at most MAX bytes (default 1024), shown exactly as it came",
        help: "A read returns whatever has arrived, up to MAX: two sends may come as one read.\n\
               0 bytes means the peer closed its side (EOF).",
        run: |s, a| Box::pin(data::recv(s, a)),
    },
    Command {
        name: "expect",
        aliases: &[],
        usage: "expect NAME TEXT|/REGEX/ [timeout DUR]",
        summary: "wait until NAME receives matching data; a script fails if it does not come",
        help: "Looks at data received since the last match. /REGEX/ is a regular expression; it may contain spaces\n\
               (/hello world/) and ends at the first / followed by a space or the end of the line (write \\/ for a\n\
               slash there). What a regex matched is shown. In a script, no match in time fails with status 75\n\
               (timed out) and says what arrived instead; the end of the stream before a match fails with 65 (data).",
        run: |s, a| Box::pin(data::expect(s, a)),
    },
    Command {
        name: "shutdown",
        aliases: &[],
        usage: "shutdown NAME read|write|both",
        summary: "close one direction of a connection (shutdown)",
        help: "write: sends FIN; the peer reads EOF but can still send to us. read: we stop reading.",
        run: |s, a| Box::pin(sockets::shutdown(s, a)),
    },
    Command {
        name: "close",
        aliases: &[],
        usage: "close NAME [timeout DUR]\nclose SERVER.*",
        summary: "close a socket (or every connection a server accepted)",
        help: "A connection sends FIN (or a reset, if data we never read is still queued).\n\
               SERVER.* closes every connection SERVER accepted, all at once (without waiting, for each, for the kernel to\n\
               finish the goodbye). A server that many clients visit closes by itself the connections whose client left with\n\
               nothing unread, past the 64 most recent.",
        run: |s, a| Box::pin(sockets::close(s, a)),
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
        run: |s, a| Box::pin(files::serve(s, a)),
    },
    Command {
        name: "upload",
        aliases: &[],
        usage: "upload NAME FILE [as REMOTE_NAME] [resume] [timeout DUR]\nupload --raw NAME FILE [timeout DUR]",
        summary: "send a file to a file server, verified end to end (or raw, like the lecture)",
        help: "NAME is a connection to the server, or a `serve files` server of this shell (a connection is made).\n\
               The file is streamed with its name, size and BLAKE3 digest; the receiver checks both before it\n\
               renames the file into place. resume continues an upload that was cut off. --raw sends only the\n\
               bytes, then shuts down writing: what the lecture's server and `nc -l` expect.",
        run: |s, a| Box::pin(files::upload(s, a)),
    },
    Command {
        name: "download",
        aliases: &[],
        usage: "download NAME REMOTE_NAME [as LOCAL_FILE] [overwrite] [timeout DUR]",
        summary: "fetch a file a file server offers, verified, written atomically",
        help: "An interrupted download resumes by itself next time.",
        run: |s, a| Box::pin(files::download(s, a)),
    },
    Command {
        name: "write",
        aliases: &[],
        usage: "write FILE DATA",
        summary: "create (or replace) a file with DATA, to have something to send",
        help: "DATA as for send. `{tmp}` is a directory of this session's own, removed at exit.",
        run: |s, a| Box::pin(files::write(s, a)),
    },
    Command {
        name: "mkdir",
        aliases: &[],
        usage: "mkdir DIR",
        summary: "create a directory (and its parents)",
        help: "`mkdir {tmp}/in` makes a directory for uploads.",
        run: |s, a| Box::pin(files::mkdir(s, a)),
    },
    Command {
        name: "files",
        aliases: &[],
        usage: "files DIR",
        summary: "list a directory: names, sizes, and partial uploads kept to resume",
        help: "Working files of the transfer protocol start with .socklab- and never carry a final name.",
        run: |s, a| Box::pin(files::files(s, a)),
    },
    Command {
        name: "compare",
        aliases: &["cmp"],
        usage: "compare FILE FILE",
        summary: "are two files byte-identical? (and where they first differ)",
        help: "Fails (in a script) when they differ.",
        run: |s, a| Box::pin(files::compare(s, a)),
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
        run: |s, a| Box::pin(data::frame(s, a)),
    },
    Command {
        name: "watch",
        aliases: &[],
        usage: "watch NAME on|off",
        summary: "on: read a connection in the background (events); off: read it with recv",
        help: "Connections from `listen PORT` and `connect HOST PORT` start watched; step-by-step ones do not.",
        run: |s, a| Box::pin(sockets::watch(s, a)),
    },
    Command {
        name: "sockets",
        aliases: &["ls"],
        usage: "sockets",
        summary: "list every socket: name, kind, kernel TCP state, addresses, bytes in and out",
        help: "TCP is the kernel's state (TCP_INFO). READ BY says whether data shows as events or waits for\n\
               recv. Connections this shell closed that the kernel keeps in TIME_WAIT are listed below.",
        run: |s, a| Box::pin(sockets::sockets(s, a)),
    },
    Command {
        name: "relay",
        aliases: &[],
        usage: "relay [HOST] PORT to HOST PORT [as NAME]\nrelay [HOST] PORT to LISTENER [as NAME]",
        summary: "relay every client to an upstream (socat TCP-LISTEN,fork TCP:…), every byte an event",
        help: "Each client gets a pair NAME.1, NAME.2, …: its own leg and the relay's own connection upstream.\n\
               Every read either way is an event (`r.1 client -> upstream: …`, `r.1 upstream -> client: …`).\n\
               End of stream one way is a half-close the other way (shutdown write); a reset resets the other leg.\n\
               An upstream that refuses: the client's leg is closed and an event says why. Faults: see `fault`.\n\
               Bound: a pair holds at most 192 KiB on its way (4 queued reads of 16 KiB each way, plus one being\n\
               read and one being written); then it stops reading and TCP flow control slows the sender. At most 256 pairs.",
        run: |s, a| Box::pin(relay::relay(s, a)),
    },
    Command {
        name: "fault",
        aliases: &[],
        usage: "fault NAME latency DUR [jitter DUR]\nfault NAME bandwidth RATE\nfault NAME slice SIZE [DUR]\nfault NAME limit BYTES\nfault NAME reset|stall|clear",
        summary: "set or clear a fault on a relay (all its pairs, now and later) or on one pair (toxiproxy's toxics)",
        help: "Each fault applies to both directions and replaces the same fault set before; they combine.\n\
               latency: every read waits DUR (plus 0 to the jitter) before it is written; order is kept.\n\
               bandwidth: RATE bytes per second each way (1K = 1024 B/s, 1M = 1048576 B/s).\n\
               slice: writes cut into pieces of SIZE bytes, DUR apart: the byte stream keeps no message edges.\n\
               limit: after BYTES bytes one way, the pair is closed. stall: nothing is read or written until clear\n\
               (senders are slowed by flow control; nothing piles up). reset: both legs of every pair get an RST now\n\
               (SO_LINGER 0, then close). clear: every fault removed; what was held comes through before this returns.\n\
               `info NAME` and `sockets` show the faults in force.",
        run: |s, a| Box::pin(relay::fault(s, a)),
    },
    Command {
        name: "chat",
        aliases: &[],
        usage: "chat [HOST] PORT [as NAME]",
        summary: "a chat broker (ncat --chat): every line a client sends goes to the others as `<userN> line`",
        help: "Clients are named <user1>, <user2>, … in join order; joins and leaves are announced to the others in\n\
               ncat's words (`<announce> 127.0.0.1 is connected as <user1>.`). Each line is an event (`NAME <user1> …`).\n\
               Bounds: a line is at most 64 KiB (a client that sends more without a newline is told so and dropped);\n\
               a client that takes no line for 10 s is dropped; at most 256 clients.",
        run: |s, a| Box::pin(relay::chat(s, a)),
    },
    Command {
        name: "bench",
        aliases: &[],
        usage: "bench serve [HOST] PORT [as NAME]\nbench stream [HOST PORT | NAME] [for DUR | SIZE] [streams N] [timeout DUR]\nbench rtt [HOST PORT | NAME] [count N] [size BYTES] [udp] [timeout DUR]\nbench connect [HOST PORT | NAME] [count N] [concurrency C] [timeout DUR]\nbench hold [HOST PORT | NAME] N [timeout DUR]",
        summary: "measure socklab itself: throughput, round trips, connects per second, connections held (like iperf3, sockperf)",
        help: "serve: a bench server (a listener: `sockets` lists it, `close` ends it), TCP and UDP on one port; each client's\n\
               8-byte header says sink, echo or hold (docs/protocol.md). The other forms talk to one, of this shell or of\n\
               another socklab, by HOST PORT or by NAME (with neither: this shell's only bench server).\n\
               stream: memory to memory for DUR (5s) or SIZE bytes, over N parallel TCP streams (1 to 64); per second on a terminal.\n\
               rtt: N round trips (10000) of BYTES (64) with TCP_NODELAY, or over UDP; min, p50, p90, p99, p99.9, max.\n\
               connect: N connections (1000), C at a time (1), each closed with a reset (no TIME_WAIT); rate and times.\n\
               hold: N connections open at once, a message echoed on each; memory per connection and the fd limit (raised).\n\
               Every wait has `timeout DUR` (else 10s). A script prints one `bench KIND: FIGURE NUMBER UNIT` line per figure.",
        run: |s, a| Box::pin(bench::bench(s, a)),
    },
    Command {
        name: "ip",
        aliases: &[],
        usage: "ip ADDR[/PREFIX]",
        summary: "what an IP address is: version, bytes, scope; for a prefix, the network's range",
        help: "IPv4 has 4 bytes, IPv6 16. Scopes: loopback, private, link-local, multicast, broadcast,\n\
               unspecified, documentation, shared, global. With /PREFIX: network, broadcast, first and last host.",
        run: |s, a| Box::pin(inspect::ip(s, a)),
    },
    Command {
        name: "port",
        aliases: &[],
        usage: "port N",
        summary: "what a port number means, its well-known services, and whether it is free here",
        help: "0 = any free port (bind); 1-1023 system; 1024-49151 registered; 49152-65535 dynamic.",
        run: |s, a| Box::pin(inspect::port(s, a)),
    },
    Command {
        name: "ifconfig",
        aliases: &["ipconfig", "interfaces"],
        usage: "ifconfig",
        summary: "this machine's network interfaces, their addresses and flags",
        help: "Read from the OS (getifaddrs). `lo` carries 127.0.0.1: the machine itself.",
        run: |s, a| Box::pin(inspect::ifconfig(s, a)),
    },
    Command {
        name: "resolve",
        aliases: &[],
        usage: "resolve HOST",
        summary: "every address the system resolver gives for a name, in order",
        help: "The resolver reads /etc/hosts, then DNS.",
        run: |s, a| Box::pin(inspect::resolve(s, a)),
    },
    Command {
        name: "ping",
        aliases: &[],
        usage: "ping HOST [PORT] [count N] [every DUR] [via icmp|tcp]",
        summary: "is a host reachable? ICMP echo where allowed, else TCP connect time to PORT",
        help: "Says which method it used and why; prints each probe and min/avg/max like ping.",
        run: |s, a| Box::pin(inspect::ping(s, a)),
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
        run: |s, a| Box::pin(jobs::spawn(s, a)),
    },
    Command {
        name: "jobs",
        aliases: &[],
        usage: "jobs",
        summary: "list jobs: workers, mode, PID, thread id, state, lines so far",
        help: "A job is what one spawn started.",
        run: |s, a| Box::pin(jobs::jobs(s, a)),
    },
    Command {
        name: "wait",
        aliases: &[],
        usage: "wait [JOB] [timeout DUR]",
        summary: "wait until a job (or every running job) has finished",
        help: "In a script, prints the job's lines in step order as it runs.",
        run: |s, a| Box::pin(jobs::wait(s, a)),
    },
    Command {
        name: "kill",
        aliases: &[],
        usage: "kill JOB",
        summary: "stop a job's workers at once (processes are killed and reaped)",
        help: "Nothing is left running: no zombie, no orphan.",
        run: |s, a| Box::pin(jobs::kill(s, a)),
    },
    Command {
        name: "measure",
        aliases: &[],
        usage: "measure",
        summary: "concurrency vs parallelism, measured now: CPU-bound and waiting work, 1 vs 2 workers",
        help: "Runs primes (CPU) and nap (waiting) with 1 worker, then 2 as processes, threads, tasks on one\n\
               thread and tasks on the multi-thread runtime; prints wall time, CPU time and speedup.",
        run: |s, a| Box::pin(jobs::measure(s, a)),
    },
    Command {
        name: "repeat",
        aliases: &[],
        usage: "repeat N [every DUR] COMMAND...",
        summary: "run a command N times; {i} in it counts 0, 1, …, N-1",
        help: "The lecture's `for i in range(10): print(f'main##{i}'); time.sleep(0.1)` is\n\
               `repeat 10 every 100ms echo main##{i}`.",
        run: |s, a| Box::pin(jobs::repeat(s, a, COMMANDS)),
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
        run: |s, a| Box::pin(observe::trace(s, a)),
    },
    Command {
        name: "info",
        aliases: &[],
        usage: "info NAME",
        summary: "what the kernel knows of a TCP socket (TCP_INFO): state, rtt, window, bytes acked, …",
        help: "Read at the moment you ask; the numbers change as the connection lives.\n\
               Of a UNIX connection: its addresses and who the peer is (SO_PEERCRED: pid, uid, gid, as the kernel recorded them).",
        run: |s, a| Box::pin(observe::info(s, a)),
    },
    Command {
        name: "log",
        aliases: &[],
        usage: "log FILE [text|hex] [NAME…]\nlog FILE.pcap\nlog off [FILE]\nlog",
        summary: "append every byte in and out of the streams to FILE, as `socat -v` shows it (or a pcap file)",
        help: "Each read and each write of a stream (connections, programs, and every other kind) and each UDP datagram\n\
               becomes a record: `> 2026/11/30 12:00:00.123456  cli  length=6 from=0 to=5` (> written by send, < read;\n\
               times in UTC; from/to: the offsets of the first and last byte in that direction), then the data as text\n\
               (`\\r` shown, other unprintable bytes as `.`) or, with hex, as `socat -v -x` dumps it. Datagrams read\n\
               `< …  u1  datagram length=5 peer=127.0.0.1:9000`. With NAMEs only those streams are logged (a name also\n\
               covers a server's clients NAME.N); without, every stream, present and future. FILE is created (0600) if\n\
               missing and appended to. A FILE ending in .pcap gets the frames that `trace` captures (the loopback\n\
               interface, this shell's TCP ports; root or CAP_NET_RAW) for `tcpdump -r` and Wireshark.\n\
               Logging never slows the streams: records wait for the file's writer in a queue of at most 4096 records\n\
               and 8 MiB; past that they are dropped, counted, and the log says where (`! … N record(s) dropped here`).\n\
               Several logs may be open at once: `log off FILE` closes one, `log off` all (their data is then in the\n\
               file); `log` lists them. Not in a text log: what a `listen … exec` server copies between a client and\n\
               its program, and file transfers (upload, download, serve), which own their connections.",
        run: |s, a| Box::pin(log::log(s, a)),
    },
    Command {
        name: "format",
        aliases: &[],
        usage: "format [text|hex|auto]",
        summary: "how received bytes are shown",
        help: "auto (the default) shows text as a quoted string and anything else as a hexdump.",
        run: |s, a| Box::pin(session::format(s, a)),
    },
    Command {
        name: "sleep",
        aliases: &[],
        usage: "sleep DUR",
        summary: "pause (events keep arriving)",
        help: "DUR is like 250ms, 2s or 1m.",
        run: |s, a| Box::pin(session::sleep(s, a)),
    },
    Command {
        name: "echo",
        aliases: &[],
        usage: "echo TEXT...",
        summary: "print text",
        help: "Prints its arguments separated by spaces.",
        run: |s, a| Box::pin(session::echo(s, a)),
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
        name: "host",
        aliases: &[],
        usage: "host add NAME [ADDR]\nhost add PREFIX COUNT\nhost del NAME\nhost lan NET/PREFIX",
        summary: "add a lab host: a network namespace with one interface on the lab's LAN (needs root)",
        help: "A host is a network namespace of its own, with its loopback and eth0 on the lab's LAN (192.168.24.0/24 unless\n\
               `host lan` said otherwise), a bridge in a namespace of its own: this shell's network never touches the LAN.\n\
               The first host named teacher gets .148 (the lecture's 192.168.24.148); others the lowest free address.\n\
               `host add student 30` adds student1 … student30. Run commands on a host with `on HOST …`.\n\
               Every host is removed at quit, at the end of a script, on Ctrl-C and SIGTERM; a shell killed outright\n\
               leaves its namespaces (named sl<PID>-NAME) to the next socklab, which removes them.",
        run: |s, a| Box::pin(hosts::host(s, a)),
    },
    Command {
        name: "hosts",
        aliases: &[],
        usage: "hosts",
        summary: "list the lab's hosts: address, interface, link, sockets held",
        help: "INTERFACE is the host's eth0 and the bridge port at its other end; LINK is what `link` set.",
        run: |s, a| Box::pin(hosts::hosts(s, a)),
    },
    Command {
        name: "on",
        aliases: &[],
        usage: "on HOST COMMAND…",
        summary: "run a command inside a lab host (its sockets, programs and pings are made there)",
        help: "on teacher listen 192.168.24.148 5556 as srv | on student3 connect 192.168.24.148 5556 as s3 |\n\
               on student1 ping 192.168.24.148 | on student2 ifconfig | on student1 exec sh -c 'ip route'.\n\
               A socket keeps its host for life: later commands name it without `on`; `sockets` shows its HOST.\n\
               Addresses of the lab's LAN are reached only from its hosts.",
        run: |s, a| Box::pin(on(s, a)),
    },
    Command {
        name: "link",
        aliases: &[],
        usage: "link HOST delay DUR [jitter DUR] [loss PCT] [rate RATE]\nlink HOST down|up|clear",
        summary: "make a host's link slow, lossy or down (tc netem on its eth0, or socklab's delay line)",
        help: "Delay, jitter, loss and rate apply to what HOST sends: `link student1 delay 50ms` adds 50 ms to its round trips.\n\
               Settings add up across commands; `clear` (or `delay 0ms`) removes them; `down` unplugs the cable, `up` plugs it back.\n\
               With the kernel's netem, netem does it all. Without it, loss and rate are an HTB queue and a random-drop filter,\n\
               and delay and jitter are socklab's delay line: the host's frames are held (in order) on their way to the LAN's bridge.",
        run: |s, a| Box::pin(hosts::link(s, a)),
    },
    Command {
        name: "join",
        aliases: &[],
        usage: "join NAME GROUP [IFADDR]",
        summary: "join a UDP socket of a lab host to a multicast group (IP_ADD_MEMBERSHIP)",
        help: "The socket then gets what is sent to GROUP on its port (bind it to 0.0.0.0 or to GROUP). It joins on the\n\
               host's LAN interface unless IFADDR names another. Only sockets made with `on HOST …` may: multicast stays\n\
               inside the lab. See also `set NAME multicast_ttl|multicast_loop|multicast_if`.",
        run: |s, a| Box::pin(hosts::membership(s, a, true)),
    },
    Command {
        name: "leave",
        aliases: &[],
        usage: "leave NAME GROUP [IFADDR]",
        summary: "leave a multicast group (IP_DROP_MEMBERSHIP): the socket gets no more of it",
        help: "The opposite of `join`; the group's datagrams no longer reach the socket.",
        run: |s, a| Box::pin(hosts::membership(s, a, false)),
    },
    Command {
        name: "lang",
        aliases: &[],
        usage: "lang [zh|en|both]",
        summary: "the language of lessons and explanations: 中文, English or both",
        help: "Lessons' comments and questions, the lines that explain OS errors and the hints follow it; the OS's own\n\
               error text stays as the OS writes it. Default: both, or $SOCKLAB_LANG, or `socklab --lang zh|en|both`.\n\
               In a session file, `#zh …` and `#en …` comments show in one language, `# …` in every one.",
        run: |s, a| Box::pin(lessons::lang(s, a)),
    },
    Command {
        name: "lessons",
        aliases: &[],
        usage: "lessons",
        summary: "list the lessons: the lecture's sections, what each shows, how far you got",
        help: "Progress is kept per user in $XDG_STATE_HOME/socklab/lessons (~/.local/state/socklab/lessons).",
        run: |s, a| Box::pin(lessons::lessons(s, a)),
    },
    Command {
        name: "lesson",
        aliases: &[],
        usage: "lesson N|LESSON",
        summary: "walk through a lesson step by step (on a terminal): read, predict, run, see",
        help: "Each step explains, then puts the next command on the line: Enter runs it, or edit it, or type your own.\n\
               At some steps you first predict what will happen (how many bytes a recv returns, whether a bind succeeds).\n\
               At the prompt: back (the step before), skip (the next step), again (this step once more), quit lesson.\n\
               A command that fails where the lesson did not mean it to keeps you at its step, your line offered again.\n\
               back undoes the step before: sockets cannot be un-created, so the lab starts afresh (sockets closed,\n\
               programs, jobs and hosts ended, trace off, format auto) and what you ran at the steps before it runs\n\
               again, its output not shown; a line that fails now where it worked (or worked where it failed) is named.\n\
               What stays: the kernel's TIME_WAIT entries, files under {tmp}, job numbers. `socklab --lesson N` starts in it.",
        run: |s, a| Box::pin(lessons::lesson(s, a)),
    },
    Command {
        name: "quit",
        aliases: &["exit"],
        usage: "quit",
        summary: "close every socket and leave",
        help: "Ctrl-D does the same.",
        run: |s, a| Box::pin(session::quit(s, a)),
    },
];

/// The command called `name` (or one of its aliases).
pub fn find(name: &str) -> Option<&'static Command> {
    dispatch::find(COMMANDS, name)
}

/// The command name nearest to a mistyped one, if any is near.
pub fn nearest(name: &str) -> Option<&'static str> {
    dispatch::nearest(COMMANDS, name)
}

/// Parses and runs one line.
pub async fn execute(s: &mut Session, line: &str) -> CmdResult {
    dispatch::execute(s, COMMANDS, line).await
}

/// `on HOST COMMAND…`: the command, run through this table inside the
/// host's network namespace.
async fn on(s: &mut Session, mut a: Args) -> CmdResult {
    let (place, rest, offset) = hosts::enter(s, &mut a)?;
    let run = dispatch::execute(s, COMMANDS, &rest);
    socklab_net::netns::within(place, run)
        .await
        .map_err(|e| hosts::shift(e, offset))
}

/// `help [COMMAND]`
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

/// `docs/commands.md`, generated from the table.
#[cfg(test)]
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Command reference\n\n\
         Generated from the shell's command table (`shell/commands/mod.rs`); a test fails when this file\n\
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use proptest::prelude::*;
    use socklab_net::{Lab, SockOpt};
    use socklab_tasks::Jobs;

    use crate::out::Out;
    use crate::report::{JobLines, Printer};

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

    /// Words of the command language, right and wrong, so random lines reach
    /// deep into the handlers instead of stopping at "unknown command".
    const WORDS: &[&str] = &[
        "socket",
        "tcp",
        "v4",
        "v6",
        "as",
        "x",
        "y",
        "srv",
        "srv.1",
        "listen",
        "0",
        "5",
        "127.0.0.1",
        "::1",
        "localhost",
        "connect",
        "send",
        "recv",
        "accept",
        "close",
        "shutdown",
        "read",
        "write",
        "both",
        "set",
        "get",
        "reuseaddr",
        "linger",
        "rcvbuf",
        "on",
        "off",
        "1K",
        "10ms",
        "0s",
        "timeout",
        "expect",
        "/a+/",
        "/[/",
        "\"q\"",
        "'\\x00'",
        "hex:00ff",
        "hex:0",
        "sockets",
        "format",
        "hex",
        "bind",
        "watch",
        "{x.port}",
        "{srv.addr}",
        "70000",
        "-1",
        "echo",
        "help",
        "sleep",
        "backlog",
        "\"",
        "#",
        "!",
        "é",
        "敲代码",
        "tls",
        "starttls",
        "alpn",
        "insecure",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// No line, however wrong, panics the shell; each gives Ok or one error.
        #[test]
        fn random_command_lines_never_panic(
            lines in prop::collection::vec(prop::collection::vec(prop::sample::select(WORDS), 0..7), 1..10),
            junk in "\\PC{0,24}",
        ) {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let (lab, rx) = rt.block_on(async { Lab::new(64) });
            drop(rx);
            let (jobs, _lines) = Jobs::new(1024);
            let (job_lines, _take) = JobLines::new(false);
            let printer = Arc::new(Printer::new(Out::quiet(), false));
            let mut s = Session::new(lab.clone(), jobs, printer, Arc::new(job_lines), Some(Duration::from_millis(20)));
            for words in lines.iter().map(|w| w.join(" ")).chain([junk.clone()]) {
                // Commands that create files at a path are left out: a test
                // writes only in directories of its own.
                let first = words.split_whitespace().next().unwrap_or("");
                if ["write", "mkdir", "serve", "upload", "download", "tls"].contains(&first) {
                    continue;
                }
                let line = s.expand(&words);
                let _ = rt.block_on(execute(&mut s, &line));
            }
            rt.block_on(lab.close_all());
        }
    }
}
