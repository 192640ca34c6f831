//! The one sink. Besides a command's own output, two things happen in a
//! session: the lab's background events and the lines of spawned jobs. Both
//! arrive as one stream of [`Report`]s ([`Reports`]) and are printed by one
//! [`Printer`]: on a terminal as they come; in a script after the command
//! that caused them ([`Pending`]), or, for the lines of a job a command
//! follows, in step order ([`JobLines`] hands them to that command).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use socklab_net::{Event, Way};
use socklab_tasks::Line;
use tokio::sync::{mpsc, watch, Notify};

use crate::out::{Out, Settings};
use crate::render;

/// Something that happened besides a command's own output.
pub enum Report {
    /// A lab event: a client accepted, data arrived, a peer closed, …
    Event(Event),
    /// A line of a spawned job's worker.
    Line(Line),
}

/// The reports of one session, in arrival order: the lab's events and the
/// job lines, from the two channels `Lab::new` and `Jobs::new` return.
pub struct Reports {
    events: mpsc::Receiver<Event>,
    lines: mpsc::Receiver<Line>,
    /// Whether job lines are taken now (see [`JobLines`]).
    take_lines: watch::Receiver<bool>,
}

impl Reports {
    /// The stream over the lab's events and the jobs' lines; job lines are
    /// taken only while `take_lines` says so.
    pub fn new(
        events: mpsc::Receiver<Event>,
        lines: mpsc::Receiver<Line>,
        take_lines: watch::Receiver<bool>,
    ) -> Reports {
        Reports {
            events,
            lines,
            take_lines,
        }
    }

    /// The next report (events first when both are ready); `None` when
    /// nothing can come any more. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Report> {
        let Reports {
            events,
            lines,
            take_lines,
        } = self;
        tokio::select! {
            biased;
            Some(ev) = events.recv() => Some(Report::Event(ev)),
            Some(line) = next_line(lines, take_lines) => Some(Report::Line(line)),
            else => None,
        }
    }

    /// A report that is ready now, if any.
    pub fn try_recv(&mut self) -> Option<Report> {
        if let Ok(ev) = self.events.try_recv() {
            return Some(Report::Event(ev));
        }
        if !*self.take_lines.borrow() {
            return None;
        }
        self.lines.try_recv().ok().map(Report::Line)
    }
}

/// The next job line, once lines are taken.
async fn next_line(
    lines: &mut mpsc::Receiver<Line>,
    take_lines: &mut watch::Receiver<bool>,
) -> Option<Line> {
    take_lines.wait_for(|on| *on).await.ok()?;
    lines.recv().await
}

/// Prints reports and a command's output: the one place where both become
/// text.
pub struct Printer {
    out: Out,
    settings: Settings,
    /// This process's id, to say which lines come from the shell's process.
    shell_pid: u32,
    /// Whether job lines show the time since their job started (terminals
    /// only: it differs on every run).
    elapsed: bool,
}

impl Printer {
    /// A printer to `out`; `interactive` on a terminal.
    pub fn new(out: Out, interactive: bool) -> Printer {
        Printer {
            out,
            settings: Settings::default(),
            shell_pid: std::process::id(),
            elapsed: interactive,
        }
    }

    /// How output looks.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Stops printing anything (`true`: commands and reports alike), or
    /// prints again (`false`).
    pub fn mute(&self, on: bool) {
        self.out.mute(on);
    }

    /// Prints one message of a command's own (one or more lines).
    pub fn say(&self, msg: &str) {
        self.out.line(msg);
    }

    /// Prints one report.
    pub fn print(&self, report: &Report) {
        let text = match report {
            Report::Event(ev) => render::event(ev, self.settings.format(), self.settings.tmp()),
            Report::Line(l) => render::job_line(l, self.shell_pid, self.elapsed),
        };
        self.out.line(&text);
    }

    /// Prints data of one socket merged from several reads: the first
    /// bytes of `total`.
    fn print_data(&self, socket: &str, way: Option<Way>, shown: &[u8], total: usize) {
        let arrow = way.map_or("<-".to_string(), |w| format!("{}:", w.words()));
        self.out.line(&format!(
            "{socket} {arrow} {}",
            render::payload(shown, total, self.settings.format())
        ));
    }
}

/// What streams whose other end is outside the lab (a program, a peer
/// that is no socket of this lab) reported, in a script. The outside world
/// answers on its own schedule, so a transcript must not depend on when an
/// answer came or how the kernel cut it into reads: their data is shown by
/// the command that takes it (`expect` says what it took, `recv` what it
/// read), not as events; their other events (stderr, end of stream, reset,
/// exit) are held until `close` on that stream, which settles them (at the
/// end of the input, every outside stream still open is closed so).
#[derive(Default)]
pub struct Held {
    /// The events, per stream, in arrival order.
    by_stream: BTreeMap<String, VecDeque<Event>>,
    /// Payload bytes held, all streams together.
    bytes: usize,
}

/// How many events one stream holds; past it, the oldest go.
const HELD_MAX: usize = 10_000;
/// How many payload bytes all outside streams hold together (a quarter of
/// the session's event budget); past it, the oldest of the stream that
/// grew go.
const HELD_BYTES: usize = socklab_net::EVENT_BUDGET / 4;

impl Held {
    /// Holds an event of an outside stream. Returns the oldest held events
    /// of that stream that no longer fit (to print now): under a flood, the
    /// bound beats the order.
    pub fn hold(&mut self, ev: Event) -> Vec<Event> {
        if matches!(ev, Event::Data { .. } | Event::Message { .. }) {
            // Shown by the command that takes it (its budget comes back now).
            return Vec::new();
        }
        self.bytes += payload_len(&ev);
        let held = self.by_stream.entry(ev.socket().to_string()).or_default();
        held.push_back(ev);
        let mut out = Vec::new();
        while held.len() > HELD_MAX || (self.bytes > HELD_BYTES && held.len() > 1) {
            let Some(old) = held.pop_front() else {
                break;
            };
            self.bytes -= payload_len(&old);
            out.push(old);
        }
        out
    }

    /// The events held for `stream`, in the order of a program's life
    /// (see [`life_order`]).
    pub fn release(&mut self, stream: &str) -> Vec<Event> {
        let mut out: Vec<Event> = self
            .by_stream
            .remove(stream)
            .map(Vec::from)
            .unwrap_or_default();
        self.bytes -= out.iter().map(payload_len).sum::<usize>();
        life_order(&mut out);
        out
    }

    /// Everything held, stream by stream in name order (the end of a
    /// script).
    pub fn release_all(&mut self) -> Vec<Event> {
        self.bytes = 0;
        std::mem::take(&mut self.by_stream)
            .into_values()
            .flat_map(|held| {
                let mut held = Vec::from(held);
                life_order(&mut held);
                held
            })
            .collect()
    }
}

/// Puts one outside stream's held events in the order its life had them,
/// not the order they arrived: what it wrote to stderr, then the end of its
/// stream (or a reset, a failure), then its exit. A program's stderr and
/// stdout are two pipes, and its exit a third source: which of them the
/// shell hears first is timing (seen as `exited` before `peer closed
/// (EOF)`, and stderr after EOF, on a busy machine). Events of one rank
/// keep their arrival order.
fn life_order(events: &mut [Event]) {
    events.sort_by_key(|ev| match ev {
        Event::Stderr { .. } => 0,
        Event::Exited { .. } => 2,
        _ => 1,
    });
}

/// Events that arrived while a script command ran, kept in arrival order
/// and printed after the command's own output. Consecutive reads of one
/// socket are merged into one message, since how the kernel cut a stream
/// into reads is timing, not content.
#[derive(Default)]
pub struct Pending {
    items: VecDeque<PendingItem>,
    /// Payload bytes of the events kept whole (messages, datagrams).
    bytes: usize,
}

enum PendingItem {
    Data {
        socket: Arc<str>,
        /// Which way a relay pair forwarded it (`None`: a socket read it).
        way: Option<Way>,
        shown: BytesMut,
        total: usize,
    },
    Other(Event),
}

/// How many bytes of merged data are kept for display.
const PENDING_SHOWN: usize = 4096;
/// Past this many pending items, older ones are printed at once.
const PENDING_MAX: usize = 10_000;
/// Past this many payload bytes kept whole, older items are printed at
/// once: a quarter of the session's event budget, so readers waiting for
/// the budget always get some back.
const PENDING_BYTES: usize = socklab_net::EVENT_BUDGET / 4;

/// The payload bytes an event carries.
fn payload_len(ev: &Event) -> usize {
    match ev {
        Event::Data { data, .. }
        | Event::Message { data, .. }
        | Event::Datagram { data, .. }
        | Event::Stderr { data, .. }
        | Event::Relayed { data, .. } => data.len(),
        Event::Chat { line, .. } => line.len(),
        _ => 0,
    }
}

impl Pending {
    /// Adds an event.
    pub fn push(&mut self, ev: Event, printer: &Printer) {
        let merged = match &ev {
            Event::Data { socket, data } => Some((socket, None, data)),
            Event::Relayed { pair, way, data } => Some((pair, Some(*way), data)),
            _ => None,
        };
        if let Some((socket, way, data)) = merged {
            let joins = self.join_index(socket, way);
            if let Some(PendingItem::Data { shown, total, .. }) =
                joins.and_then(|i| self.items.get_mut(i))
            {
                let room = PENDING_SHOWN.saturating_sub(shown.len());
                shown.extend_from_slice(&data[..data.len().min(room)]);
                *total += data.len();
                return;
            }
            let mut shown = BytesMut::new();
            shown.extend_from_slice(&data[..data.len().min(PENDING_SHOWN)]);
            self.items.push_back(PendingItem::Data {
                socket: socket.clone(),
                way,
                shown,
                total: data.len(),
            });
        } else {
            self.bytes += payload_len(&ev);
            self.items.push_back(PendingItem::Other(ev));
        }
        while self.items.len() > PENDING_MAX || self.bytes > PENDING_BYTES {
            let Some(first) = self.items.pop_front() else {
                break;
            };
            if let PendingItem::Other(ev) = &first {
                self.bytes -= payload_len(ev);
            }
            print_item(first, printer);
        }
    }

    /// The pending data item a read of `socket` (forwarded `way` by a
    /// relay pair, or read by the socket) joins: the last item when it is
    /// that socket's; where a relay is involved, also an earlier one when
    /// only data items came after it (how the reads of a relay's two legs
    /// and of the sockets at its ends interleave is timing, not content).
    fn join_index(&self, socket: &str, way: Option<Way>) -> Option<usize> {
        let mut relayed = way.is_some();
        for (i, item) in self.items.iter().enumerate().rev() {
            let PendingItem::Data {
                socket: s, way: w, ..
            } = item
            else {
                return None;
            };
            if &**s == socket && *w == way {
                return (i + 1 == self.items.len() || relayed).then_some(i);
            }
            relayed |= w.is_some();
        }
        None
    }

    /// Prints and forgets everything pending.
    pub fn flush(&mut self, printer: &Printer) {
        self.bytes = 0;
        order_fan_out(self.items.make_contiguous());
        for item in self.items.drain(..) {
            print_item(item, printer);
        }
    }
}

/// One datagram that reached several receivers (a broadcast, a multicast
/// in the classroom) is reported by each in whatever order their readers
/// ran: a run of such reports is put in the order of the receivers' names
/// (`r2` before `r10`).
fn order_fan_out(items: &mut [PendingItem]) {
    let key = |item: &PendingItem| match item {
        PendingItem::Other(Event::Datagram { from, data, .. }) => Some((*from, data.bytes())),
        _ => None,
    };
    let name = |item: &PendingItem| match item {
        PendingItem::Other(Event::Datagram { socket, .. }) => natural(socket),
        _ => (String::new(), 0),
    };
    let mut start = 0;
    while start < items.len() {
        let Some(k) = key(&items[start]) else {
            start += 1;
            continue;
        };
        let mut end = start + 1;
        while end < items.len() && key(&items[end]).as_ref() == Some(&k) {
            end += 1;
        }
        items[start..end].sort_by_key(|i| name(i));
        start = end;
    }
}

/// A name as (its text without the trailing number, that number).
fn natural(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (text, num) = name.split_at(name.len() - digits);
    (text.to_string(), num.parse().unwrap_or(0))
}

fn print_item(item: PendingItem, printer: &Printer) {
    match item {
        PendingItem::Data {
            socket,
            way,
            shown,
            total,
        } => printer.print_data(&socket, way, &shown, total),
        PendingItem::Other(ev) => printer.print(&Report::Event(ev)),
    }
}

/// Job lines on their way to the command that follows their job (a script
/// prints a job's lines in step order, as part of `spawn` or `wait`).
///
/// In a script, job lines are taken from [`Reports`] only while a command
/// follows a job ([`JobLines::following`]); until then they wait in the
/// jobs' bounded channel, which holds their workers back when it is full.
/// On a terminal they are always taken and printed as they come.
pub struct JobLines {
    /// Lines taken but not yet printed, by job, in arrival order.
    held: Mutex<HashMap<String, Vec<Line>>>,
    /// Woken when a line is held.
    arrived: Notify,
    /// Whether [`Reports`] takes job lines now.
    take: watch::Sender<bool>,
    /// Always take them (a terminal).
    always: bool,
}

impl JobLines {
    /// The hand-over, and the switch a [`Reports`] reads; `always` on a
    /// terminal.
    pub fn new(always: bool) -> (JobLines, watch::Receiver<bool>) {
        let (take, taking) = watch::channel(always);
        let lines = JobLines {
            held: Mutex::default(),
            arrived: Notify::new(),
            take,
            always,
        };
        (lines, taking)
    }

    /// Keeps a line taken from [`Reports`] for the command that follows its
    /// job.
    pub fn hold(&self, line: Line) {
        self.lock()
            .entry(line.job.to_string())
            .or_default()
            .push(line);
        self.arrived.notify_one();
    }

    /// The lines of `job` held so far, in arrival order.
    pub fn take(&self, job: &str) -> Vec<Line> {
        self.lock().remove(job).unwrap_or_default()
    }

    /// Drops the lines held for `job` (it was killed).
    pub fn forget(&self, job: &str) {
        self.lock().remove(job);
    }

    /// Job lines are taken from [`Reports`] until the guard is dropped.
    pub fn following(&self) -> Following<'_> {
        self.take.send_replace(true);
        Following(self)
    }

    /// Waits until a line is held (maybe one already taken: look again).
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Line>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// While it lives, a command follows a job: [`Reports`] takes job lines.
pub struct Following<'a>(&'a JobLines);

impl Drop for Following<'_> {
    fn drop(&mut self) {
        if !self.0.always {
            self.0.take.send_replace(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::sync::Arc;

    use socklab_net::Event;

    use super::Held;

    /// Regression: a program closed right after it ended printed `exited`
    /// before `peer closed (EOF)` on a busy machine (4 transcripts in 40
    /// loaded runs of one session), because the held events came out in
    /// arrival order.
    #[test]
    fn a_program_s_exit_is_released_after_its_end_of_stream() {
        let p: Arc<str> = Arc::from("p");
        let mut held = Held::default();
        let exited = Event::Exited {
            socket: p.clone(),
            status: Some(std::process::ExitStatus::from_raw(0)),
        };
        assert!(held.hold(exited).is_empty());
        assert!(held
            .hold(Event::PeerClosed { socket: p.clone() })
            .is_empty());
        let out = held.release("p");
        assert!(
            matches!(
                out.as_slice(),
                [Event::PeerClosed { .. }, Event::Exited { .. }]
            ),
            "{out:?}"
        );
        // The same at the end of a script.
        held.hold(Event::Exited {
            socket: p.clone(),
            status: None,
        });
        held.hold(Event::Reset { socket: p });
        let out = held.release_all();
        assert!(
            matches!(out.as_slice(), [Event::Reset { .. }, Event::Exited { .. }]),
            "{out:?}"
        );
    }
}
