//! The classroom on one machine: lab hosts, each a network namespace with
//! its loopback and one interface (`eth0`) on the lab's LAN.
//!
//! The LAN is a bridge (`br0`) in a namespace of its own (`sl<PID>-lan`),
//! never in the root namespace: each veth pair is created with one end in
//! the LAN's namespace and the other in the host's, so this shell's own
//! network never gets an interface on the LAN, and two shells' LANs (each
//! its own bridge) never meet. Every name carries the shell's PID
//! (`sl<PID>-teacher`): [`sweep`] removes what a shell that is no longer
//! running left behind.
//!
//! Namespaces and links are made with iproute2 (`ip -batch`, one run for
//! all the namespaces and veth pairs, one for the bridge ports, one per
//! host for its addresses), and link settings with `tc … netem`. A kernel
//! without netem gets loss from a random-drop filter and delay from
//! socklab's own delay line ([`delay`]).

pub mod delay;
pub mod rootless;

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::netns::{self, Place};
use delay::{DelayLine, Timing};

/// How long a link may take to carry traffic once it is up (the kernel
/// activates its queue and the bridge port on a work queue of its own).
const LINK_SETTLE: Duration = Duration::from_secs(3);

/// Where `ip netns add` puts its namespaces.
const NETNS_DIR: &str = "/run/netns";

/// At most this many hosts in one shell.
pub const MAX_HOSTS: usize = 250;

/// The longest host name.
const MAX_NAME: usize = 24;

/// Why a host operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The request itself is wrong (a name taken, an address off the LAN).
    #[error("{0}")]
    Usage(String),
    /// Something this machine lacks (root, iproute2).
    #[error("{0}")]
    Missing(String),
    /// A system command failed.
    #[error("{what}: {detail}")]
    System {
        /// What was being done.
        what: String,
        /// What the command said.
        detail: String,
    },
}

/// How a host's link behaves: netem on its `eth0` (what the host sends).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    /// Added delay.
    pub delay: Option<Duration>,
    /// Variation of the delay.
    pub jitter: Option<Duration>,
    /// Packets lost, in percent.
    pub loss: Option<f64>,
    /// Rate limit, as tc writes it (`1mbit`, `100kbit`).
    pub rate: Option<String>,
    /// The interface is down.
    pub down: bool,
}

impl Link {
    /// tc's qdisc and its arguments; empty when nothing is set. A rate
    /// alone is a token bucket (tbf), which every kernel with traffic
    /// control has; delay, jitter and loss need netem.
    fn qdisc(&self) -> Vec<String> {
        if let (None, None, Some(r)) = (self.delay, self.loss, &self.rate) {
            return ["tbf", "rate", r, "burst", "32kbit", "latency", "400ms"]
                .map(String::from)
                .to_vec();
        }
        let mut a = self.netem();
        if !a.is_empty() {
            a.insert(0, "netem".to_string());
        }
        a
    }

    /// Loss (and a rate) without netem, as a `tc -batch` script: an HTB
    /// root whose class 1:2 ends in a queue of length 0 (it drops all it
    /// gets), and a classic BPF filter that sends a packet there with the
    /// loss's probability (`ld rand`; `jgt`), else to class 1:1 (the rate,
    /// if any).
    fn random_drop(&self) -> String {
        let loss = self.loss.unwrap_or(0.0).clamp(0.0, 100.0);
        // P(drop) = P(rand <= t) = (t + 1) / 2^32.
        let t = ((loss / 100.0) * 4_294_967_296.0 - 1.0).clamp(0.0, 4_294_967_295.0) as u64;
        let rate = self.rate.clone().unwrap_or_else(|| "10gbit".into());
        format!(
            "qdisc add dev eth0 root handle 1: htb default 1 r2q 100000\n\
             class add dev eth0 parent 1: classid 1:1 htb rate {rate}\n\
             class add dev eth0 parent 1: classid 1:2 htb rate 10gbit\n\
             qdisc add dev eth0 parent 1:2 handle 2: pfifo limit 0\n\
             filter add dev eth0 parent 1: bpf bytecode \"4,32 0 0 4294963256,37 1 0 {t},6 0 0 65538,6 0 0 65537,\" classid 1:1\n"
        )
    }

    /// netem's arguments.
    fn netem(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(d) = self.delay {
            a.push("delay".to_string());
            a.push(format!("{}us", d.as_micros()));
            if let Some(j) = self.jitter {
                a.push(format!("{}us", j.as_micros()));
            }
        }
        if let Some(l) = self.loss {
            a.push("loss".to_string());
            a.push(format!("{l}%"));
        }
        if let Some(r) = &self.rate {
            a.push("rate".to_string());
            a.push(r.clone());
        }
        a
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.down {
            parts.push("down".to_string());
        }
        if let Some(d) = self.delay {
            parts.push(format!("delay {}", show_duration(d)));
        }
        if let Some(j) = self.jitter {
            parts.push(format!("jitter {}", show_duration(j)));
        }
        if let Some(l) = self.loss {
            parts.push(format!("loss {l}%"));
        }
        if let Some(r) = &self.rate {
            parts.push(format!("rate {r}"));
        }
        if parts.is_empty() {
            f.write_str("up")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// A duration as a person writes it (`50ms`, `1.5s`, `200us`).
fn show_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us % 1_000_000 == 0 {
        format!("{}s", us / 1_000_000)
    } else if us % 1000 == 0 {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

/// One host as listed.
#[derive(Debug, Clone)]
pub struct HostInfo {
    /// Its name.
    pub name: String,
    /// Its address on the LAN.
    pub addr: Ipv4Addr,
    /// The LAN's prefix length.
    pub prefix: u8,
    /// Its network namespace (`sl<PID>-NAME`).
    pub netns: String,
    /// Its interface on the LAN, and the bridge port at the other end.
    pub iface: String,
    /// Its link settings.
    pub link: Link,
    /// Frames its delay line dropped (a full queue), when socklab's delay
    /// line carries its delay (a kernel without netem).
    pub line_drops: Option<u64>,
}

/// One host.
struct Host {
    /// Its place: the namespace and the thread inside it.
    place: Arc<Place>,
    /// Its namespace's name.
    netns: String,
    /// The bridge port (the veth end in the LAN's namespace).
    port: String,
    /// Its link settings.
    link: Link,
    /// What tc holds on its `eth0` (the settings, less a delay the delay
    /// line carries).
    tc: Link,
    /// socklab's delay line on its bridge port, when the kernel has no
    /// netem and the link has a delay.
    line: Option<DelayLine>,
}

/// Every host of this shell, and the LAN they share.
pub struct Hosts {
    /// `sl<PID>`: the start of every name this shell makes.
    tag: String,
    /// The LAN's namespace exists.
    lan_up: bool,
    /// The hosts, in the order they were made.
    hosts: Vec<Host>,
    /// Numbers bridge ports.
    next_port: u32,
    /// The thread inside the LAN's namespace, while it exists.
    lan: Option<Arc<Place>>,
    /// Whether this kernel has netem (unknown until a link asks for it).
    netem: Option<bool>,
}

impl Default for Hosts {
    fn default() -> Hosts {
        Hosts::new()
    }
}

impl Hosts {
    /// No hosts yet; names will carry this process's PID.
    pub fn new() -> Hosts {
        Hosts {
            tag: format!("sl{}", std::process::id()),
            lan_up: false,
            hosts: Vec::new(),
            next_port: 1,
            lan: None,
            netem: None,
        }
    }

    /// Whether there is any host.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// How many hosts there are.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// The place of host `name`.
    pub fn place(&self, name: &str) -> Option<Arc<Place>> {
        self.find(name).map(|h| h.place.clone())
    }

    fn find(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| &*h.place.host == name)
    }

    /// The LAN's namespace.
    fn lan_ns(&self) -> String {
        format!("{}-lan", self.tag)
    }

    /// Every host, in the order they were made.
    pub fn list(&self) -> Vec<HostInfo> {
        self.hosts.iter().map(|h| self.info(h)).collect()
    }

    fn info(&self, h: &Host) -> HostInfo {
        HostInfo {
            name: h.place.host.to_string(),
            addr: h.place.addr,
            prefix: netns::lan().1,
            netns: h.netns.clone(),
            iface: format!("eth0 ~ br0:{}", h.port),
            link: h.link.clone(),
            line_drops: h.line.as_ref().map(|l| {
                l.counters()
                    .dropped
                    .load(std::sync::atomic::Ordering::Relaxed)
            }),
        }
    }

    /// Sets the LAN (only while there is no host).
    ///
    /// # Errors
    /// Hosts exist already, or the prefix is not 8 to 30.
    pub fn set_lan(&self, addr: Ipv4Addr, prefix: u8) -> Result<(), HostError> {
        if !self.hosts.is_empty() {
            return Err(HostError::Usage(
                "the LAN can change only while there is no host (host del them first)".into(),
            ));
        }
        if !(8..=30).contains(&prefix) {
            return Err(HostError::Usage(format!(
                "a LAN's prefix is 8 to 30 bits, not {prefix}"
            )));
        }
        netns::set_lan(addr, prefix);
        Ok(())
    }

    /// Makes hosts: `wanted` is names with, for some, the address asked
    /// for; the others get the lowest free addresses of the LAN (the first
    /// host named `teacher` gets .148, the lecture's).
    ///
    /// # Errors
    /// Not root, no iproute2, a name taken or malformed, an address taken
    /// or off the LAN, the LAN full, or a command failed (then nothing of
    /// this call is left).
    pub fn add(
        &mut self,
        wanted: &[(String, Option<Ipv4Addr>)],
    ) -> Result<Vec<HostInfo>, HostError> {
        privileges()?;
        let plan = self.plan(wanted)?;
        if !self.lan_up {
            self.make_lan()?;
        }
        let mut made: Vec<(String, String, String, Ipv4Addr)> = Vec::new();
        let mut root = String::new();
        let mut bridge = String::new();
        for (name, addr) in &plan {
            let ns = format!("{}-{name}", self.tag);
            let port = format!("p{}", self.next_port);
            self.next_port += 1;
            root.push_str(&format!("netns add {ns}\n"));
            // Made from the LAN's namespace (not the root one, where a
            // user namespace's root may make nothing): one end stays
            // there, the other goes to the host.
            bridge.push_str(&format!(
                "link add {port} type veth peer name eth0 netns {ns}\n\
                 link set {port} master br0\nlink set {port} up\n"
            ));
            made.push((name.clone(), ns, port, *addr));
        }
        let undo = |made: &[(String, String, String, Ipv4Addr)]| {
            let script: String = made
                .iter()
                .map(|m| format!("netns del {}\n", m.1))
                .collect();
            let _ = ip_args(&["-force"], None, &script);
        };
        if let Err(e) = ip_netns_add(&root).and_then(|()| ip(Some(&self.lan_ns()), &bridge)) {
            undo(&made);
            return Err(e);
        }
        // Each host's addresses, set by its own thread inside it, all at
        // once.
        let (_, prefix) = netns::lan();
        let mut started = Vec::new();
        for (name, ns, port, addr) in &made {
            let place = match Place::open(name, *addr, &Path::new(NETNS_DIR).join(ns)) {
                Ok(p) => p,
                Err(e) => {
                    undo(&made);
                    return Err(HostError::System {
                        what: format!("entering {ns}"),
                        detail: e.to_string(),
                    });
                }
            };
            let (tx, rx) = mpsc::sync_channel(1);
            let script = format!(
                "link set lo up\naddr add {addr}/{prefix} brd + dev eth0\nlink set eth0 up\nroute add default dev eth0\n"
            );
            let job = place.run_later(move || {
                // No IPv6 on the LAN: its router and neighbour
                // solicitations would be noise in every capture.
                for f in ["all", "default", "eth0"] {
                    let _ =
                        std::fs::write(format!("/proc/sys/net/ipv6/conf/{f}/disable_ipv6"), "1");
                }
                let _ = tx.send(ip(None, &script));
            });
            started.push((place, ns.clone(), port.clone(), rx, job));
        }
        let mut result = Ok(());
        let mut places = Vec::new();
        for (place, ns, port, rx, job) in started {
            let job = job.map_err(|e| HostError::System {
                what: format!("configuring {ns}"),
                detail: e.to_string(),
            });
            let r = job.and_then(|()| {
                rx.recv().unwrap_or_else(|_| {
                    Err(HostError::System {
                        what: format!("configuring {ns}"),
                        detail: "its thread ended".into(),
                    })
                })
            });
            if result.is_ok() {
                result = r;
            }
            places.push((place, ns, port));
        }
        if let Err(e) = result {
            undo(&made);
            return Err(e);
        }
        let ports: Vec<(Arc<Place>, String)> = places
            .iter()
            .map(|(place, _, port)| (place.clone(), port.clone()))
            .collect();
        self.settle_links(&ports);
        let mut infos = Vec::new();
        for (place, netns_name, port) in places {
            netns::register(place.clone());
            let h = Host {
                place,
                netns: netns_name,
                port,
                link: Link::default(),
                tc: Link::default(),
                line: None,
            };
            infos.push(self.info(&h));
            self.hosts.push(h);
        }
        Ok(infos)
    }

    /// Checks names and picks addresses.
    fn plan(
        &self,
        wanted: &[(String, Option<Ipv4Addr>)],
    ) -> Result<Vec<(String, Ipv4Addr)>, HostError> {
        if self.hosts.len() + wanted.len() > MAX_HOSTS {
            return Err(HostError::Usage(format!(
                "at most {MAX_HOSTS} hosts in one shell ({} now)",
                self.hosts.len()
            )));
        }
        let (net, prefix) = netns::lan();
        let size = 1u32 << (32 - u32::from(prefix));
        let base = u32::from(net);
        let mut used: BTreeSet<Ipv4Addr> = self.hosts.iter().map(|h| h.place.addr).collect();
        let mut names: BTreeSet<&str> = self.hosts.iter().map(|h| &*h.place.host).collect();
        for (name, addr) in wanted {
            check_host_name(name)?;
            if !names.insert(name) {
                return Err(HostError::Usage(format!(
                    "a host named '{name}' exists already"
                )));
            }
            if let Some(a) = addr {
                let off = u32::from(*a).wrapping_sub(base);
                if off == 0 || off >= size - 1 {
                    return Err(HostError::Usage(format!(
                        "{a} is not a host address of the LAN {net}/{prefix}"
                    )));
                }
                if !used.insert(*a) {
                    return Err(HostError::Usage(format!("{a} is taken on the LAN")));
                }
            }
        }
        let mut plan = Vec::new();
        let mut teacher_done = self.hosts.iter().any(|h| &*h.place.host == "teacher");
        for (name, addr) in wanted {
            let addr = match addr {
                Some(a) => *a,
                None => {
                    let lecture = Ipv4Addr::from(base + 148);
                    if name == "teacher" && !teacher_done && size > 149 && !used.contains(&lecture)
                    {
                        teacher_done = true;
                        used.insert(lecture);
                        lecture
                    } else {
                        let free = (1..size - 1)
                            .map(|k| Ipv4Addr::from(base + k))
                            .find(|a| !used.contains(a))
                            .ok_or_else(|| {
                                HostError::Usage(format!("the LAN {net}/{prefix} is full"))
                            })?;
                        used.insert(free);
                        free
                    }
                }
            };
            plan.push((name.clone(), addr));
        }
        Ok(plan)
    }

    /// The LAN's namespace and its bridge.
    fn make_lan(&mut self) -> Result<(), HostError> {
        claim();
        let ns = self.lan_ns();
        ip_netns_add(&format!("netns add {ns}\n"))?;
        let (net, _) = netns::lan();
        let place = match Place::open("lan", net, &Path::new(NETNS_DIR).join(&ns)) {
            Ok(p) => p,
            Err(e) => {
                let _ = ip(None, &format!("netns del {ns}\n"));
                return Err(HostError::System {
                    what: format!("entering {ns}"),
                    detail: e.to_string(),
                });
            }
        };
        // No IPv6 in the LAN's namespace either: a delay line's veth ends
        // would otherwise send their own solicitations to the hosts.
        let _ = place.run(|| {
            for f in ["all", "default"] {
                let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{f}/disable_ipv6"), "1");
            }
        });
        if let Err(e) = ip(
            Some(&ns),
            "link set lo up\nlink add br0 type bridge mcast_snooping 0\nlink set br0 up\n",
        ) {
            let _ = ip(None, &format!("netns del {ns}\n"));
            return Err(e);
        }
        self.lan_up = true;
        netns::set_lan_place(Some(place.clone()));
        self.lan = Some(place);
        Ok(())
    }

    /// Waits until each host's `eth0` is running (its queue active) and the
    /// bridge port at its other end forwards: until then the kernel drops
    /// what is sent. It polls (every 2 ms, for at most [`LINK_SETTLE`]);
    /// a timeout only ends the wait.
    fn settle_links(&self, hosts: &[(Arc<Place>, String)]) {
        let deadline = std::time::Instant::now() + LINK_SETTLE;
        let mut waiting: Vec<(Arc<Place>, String)> = hosts.to_vec();
        while !waiting.is_empty() && std::time::Instant::now() < deadline {
            let lan = self.forwarding_ports();
            waiting.retain(|(place, port)| !(lan.contains(port) && eth0_running(place)));
            if !waiting.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// The LAN's bridge ports that are up and forwarding.
    fn forwarding_ports(&self) -> BTreeSet<String> {
        let mut ip = Command::new("ip");
        rootless::keep_caps(&mut ip);
        let Ok(out) = ip
            .args([
                "-n",
                &self.lan_ns(),
                "-d",
                "-o",
                "link",
                "show",
                "master",
                "br0",
            ])
            .stderr(Stdio::null())
            .output()
        else {
            return BTreeSet::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(" state UP ") && l.contains("bridge_slave state forwarding"))
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }

    /// Removes host `name` (its namespace; its veth pair goes with it).
    ///
    /// # Errors
    /// No such host, or `ip` failed.
    pub fn remove(&mut self, name: &str) -> Result<(), HostError> {
        let i = self
            .hosts
            .iter()
            .position(|h| &*h.place.host == name)
            .ok_or_else(|| HostError::Usage(format!("no host named '{name}'")))?;
        let mut h = self.hosts.remove(i);
        netns::unregister(name);
        if h.line.take().is_some() {
            // The line's veth pair lives in the LAN's namespace.
            let _ = ip(
                Some(&self.lan_ns()),
                &format!("link del {}\n", line_ends(&h.port).0),
            );
        }
        ip(None, &format!("netns del {}\n", h.netns))
    }

    /// Removes every host and the LAN; returns how many hosts there were.
    /// Errors are ignored: this runs at the end of the session.
    pub fn clear(&mut self) -> usize {
        let n = self.hosts.len();
        // Delay lines first: their sockets would keep the LAN's namespace
        // (and its interfaces) alive after its name is gone.
        for h in &mut self.hosts {
            drop(h.line.take());
        }
        netns::set_lan_place(None);
        self.lan = None;
        let mut script: String = self
            .hosts
            .drain(..)
            .map(|h| {
                netns::unregister(&h.place.host);
                format!("netns del {}\n", h.netns)
            })
            .collect();
        if self.lan_up {
            script.push_str(&format!("netns del {}\n", self.lan_ns()));
            self.lan_up = false;
        }
        if !script.is_empty() {
            // -force: go on past a namespace already gone.
            let _ = ip_args(&["-force"], None, &script);
        }
        release_claim();
        n
    }

    /// Sets how host `name`'s link behaves (`link` is the whole setting:
    /// the shell merges a command's changes into the current one).
    ///
    /// # Errors
    /// No such host, or `tc`/`ip` failed.
    pub fn set_link(&mut self, name: &str, link: Link) -> Result<HostInfo, HostError> {
        let i = self
            .hosts
            .iter()
            .position(|h| &*h.place.host == name)
            .ok_or_else(|| HostError::Usage(format!("no host named '{name}'")))?;
        let ns = self.hosts[i].netns.clone();
        let old = self.hosts[i].link.clone();
        if link.down != old.down {
            // Down takes the routes over eth0 with it; up puts the
            // default route back.
            let script = if link.down {
                "link set eth0 down\n"
            } else {
                "link set eth0 up\nroute replace default dev eth0\n"
            };
            ip(Some(&ns), script)?;
            if !link.down {
                let h = &self.hosts[i];
                self.settle_links(&[(h.place.clone(), h.port.clone())]);
            }
        }
        // Delay by netem where the kernel has it; else tc keeps loss and
        // rate, and socklab's delay line the delay.
        let mut tc_now = link.clone();
        let mut line_wanted = false;
        if link.delay.is_some() && self.netem == Some(false) {
            (tc_now.delay, tc_now.jitter) = (None, None);
            line_wanted = true;
        }
        match self.tc(&ns, &tc_now, &self.hosts[i].tc) {
            Ok(()) => {}
            Err(e) if netem_missing(&e) => {
                self.netem = Some(false);
                line_wanted = link.delay.is_some();
                (tc_now.delay, tc_now.jitter) = (None, None);
                without_netem(&ns, &tc_now)?;
            }
            Err(e) => return Err(e),
        }
        if tc_now.delay.is_some() {
            self.netem = Some(true);
        }
        self.hosts[i].tc = tc_now;
        match (line_wanted, link.delay) {
            (true, Some(delay)) => {
                let timing = Timing {
                    delay,
                    jitter: link.jitter,
                };
                match &self.hosts[i].line {
                    Some(line) => line.set(timing),
                    None => self.insert_line(i, timing)?,
                }
            }
            _ => {
                if self.hosts[i].line.is_some() {
                    self.remove_line(i)?;
                }
            }
        }
        self.hosts[i]
            .place
            .set_unreliable(link.down || link.loss.is_some());
        self.hosts[i].link = link;
        Ok(self.info(&self.hosts[i]))
    }

    /// Puts tc's part of a link on host namespace `ns`'s `eth0`, where
    /// `before` was.
    fn tc(&self, ns: &str, now: &Link, before: &Link) -> Result<(), HostError> {
        let (q, was) = (now.qdisc(), before.qdisc());
        if q == was {
            return Ok(());
        }
        if q.first().is_some_and(|k| k == "netem") && self.netem == Some(false) {
            return without_netem(ns, now);
        }
        let mut args: Vec<String> = vec!["-n".into(), ns.into(), "qdisc".into()];
        if q.is_empty() {
            args.extend(["del", "dev", "eth0", "root"].map(String::from));
        } else {
            args.extend(["replace", "dev", "eth0", "root"].map(String::from));
            args.extend(q);
        }
        run("tc", &args, None)
    }

    /// Detaches host `i`'s bridge port and puts a delay line between it
    /// and a new bridge port (`pN` → socklab → `dN` ~ `eN` in `br0`).
    fn insert_line(&mut self, i: usize, timing: Timing) -> Result<(), HostError> {
        let lan = self.lan.clone().ok_or_else(|| HostError::System {
            what: "a delay line".into(),
            detail: "the LAN's namespace is gone".into(),
        })?;
        let port = self.hosts[i].port.clone();
        let (d, e) = line_ends(&port);
        let lan_ns = self.lan_ns();
        ip(
            Some(&lan_ns),
            &format!(
                "link set {port} nomaster\n\
                 link add {d} type veth peer name {e}\n\
                 link set {e} master br0\n\
                 link set {d} up\n\
                 link set {e} up\n"
            ),
        )?;
        match DelayLine::start(&lan, &port, &d, timing) {
            Ok(line) => self.hosts[i].line = Some(line),
            Err(err) => {
                let _ = ip(
                    Some(&lan_ns),
                    &format!("link del {d}\nlink set {port} master br0\n"),
                );
                return Err(HostError::System {
                    what: format!("a delay line on {port}"),
                    detail: err.to_string(),
                });
            }
        }
        let place = self.hosts[i].place.clone();
        self.settle_links(&[(place, e)]);
        Ok(())
    }

    /// Stops host `i`'s delay line and puts its port back on the bridge.
    fn remove_line(&mut self, i: usize) -> Result<(), HostError> {
        drop(self.hosts[i].line.take());
        let port = self.hosts[i].port.clone();
        let (d, _) = line_ends(&port);
        ip(
            Some(&self.lan_ns()),
            &format!("link del {d}\nlink set {port} master br0\n"),
        )?;
        let place = self.hosts[i].place.clone();
        self.settle_links(&[(place, port)]);
        Ok(())
    }

    /// The current link settings of `name`.
    pub fn link(&self, name: &str) -> Option<Link> {
        self.find(name).map(|h| h.link.clone())
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Whether tc said it has no netem.
fn netem_missing(e: &HostError) -> bool {
    matches!(e, HostError::System { detail, .. } if detail.contains("qdisc kind is unknown"))
}

/// tc's part of a link (loss, rate) on a kernel without netem: a token
/// bucket for a rate alone, else an HTB root with a random-drop filter.
fn without_netem(ns: &str, link: &Link) -> Result<(), HostError> {
    let tc = |args: &[&str], input: Option<&str>| {
        let mut all: Vec<String> = vec!["-n".into(), ns.into()];
        all.extend(args.iter().map(|a| a.to_string()));
        run("tc", &all, input)
    };
    let _ = tc(&["qdisc", "del", "dev", "eth0", "root"], None);
    let q = link.qdisc();
    match q.first().map(String::as_str) {
        None => Ok(()),
        Some("tbf") => {
            let mut args = vec!["qdisc", "replace", "dev", "eth0", "root"];
            args.extend(q.iter().map(String::as_str));
            tc(&args, None)
        }
        Some(_) => tc(&["-batch", "-"], Some(&link.random_drop())),
    }
}

/// The delay line's veth ends for bridge port `pN`: `dN` (socklab writes
/// into it) and `eN` (the bridge port in its place).
fn line_ends(port: &str) -> (String, String) {
    let n = port.trim_start_matches('p');
    (format!("d{n}"), format!("e{n}"))
}

/// Whether a host's `eth0` is up and running (carrier, queue active).
fn eth0_running(place: &Place) -> bool {
    use nix::net::if_::InterfaceFlags as F;
    place
        .run(|| {
            nix::ifaddrs::getifaddrs().is_ok_and(|mut all| {
                all.any(|i| {
                    i.interface_name == "eth0" && i.flags.contains(F::IFF_UP | F::IFF_RUNNING)
                })
            })
        })
        .unwrap_or(false)
}

/// A host name: a letter, then letters, digits, `-` or `_`.
fn check_host_name(name: &str) -> Result<(), HostError> {
    let ok = name.len() <= MAX_NAME
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name != "lan";
    if ok {
        Ok(())
    } else {
        Err(HostError::Usage(format!(
            "'{name}' is not a host name: a letter, then letters, digits, - or _ (at most {MAX_NAME}; not 'lan')"
        )))
    }
}

/// What making hosts needs that this process lacks, if anything: root,
/// or a user namespace of its own ([`rootless::enter`]).
///
/// # Errors
/// [`HostError::Missing`] saying what is missing.
pub fn privileges() -> Result<(), HostError> {
    const NEED: &str = "hosts need root or a user namespace of socklab's own: making network namespaces takes CAP_SYS_ADMIN and CAP_NET_ADMIN over them";
    match rootless::entered() {
        Some(rootless::Entered::Rootless | rootless::Entered::Root) => Ok(()),
        Some(rootless::Entered::Refused(why)) => Err(HostError::Missing(format!(
            "{NEED}, and {why}; or run socklab as root (sudo socklab)"
        ))),
        None if nix::unistd::geteuid().is_root() => Ok(()),
        None => Err(HostError::Missing(format!(
            "{NEED}; run socklab as root (sudo socklab)"
        ))),
    }
}

/// Runs `ip -batch -` with `script` (`netns add` lines) where it may make
/// network namespaces: here as root; without root, in a network namespace
/// of its own made for the run, since `ip netns add` goes back to the
/// namespace it started in, and a user namespace's root may not enter the
/// machine's.
fn ip_netns_add(script: &str) -> Result<(), HostError> {
    let args = ["-batch", "-"].map(String::from);
    run_in(
        "ip",
        &args,
        Some(script),
        rootless::active().then_some(fresh_netns as fn() -> std::io::Result<()>),
    )
}

/// Puts the child about to run `ip` into a network namespace of its own.
fn fresh_netns() -> std::io::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
}

/// Runs `ip [-n NS] -batch -` with `script` on its standard input.
fn ip(ns: Option<&str>, script: &str) -> Result<(), HostError> {
    ip_args(&[], ns, script)
}

fn ip_args(extra: &[&str], ns: Option<&str>, script: &str) -> Result<(), HostError> {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    if let Some(ns) = ns {
        args.push("-n".into());
        args.push(ns.into());
    }
    args.push("-batch".into());
    args.push("-".into());
    run("ip", &args, Some(script))
}

/// Runs a system command; its error output becomes the error.
fn run(program: &str, args: &[String], input: Option<&str>) -> Result<(), HostError> {
    run_in(program, args, input, None)
}

/// [`run`], with `before` run in the child before it executes `program`.
fn run_in(
    program: &str,
    args: &[String],
    input: Option<&str>,
    before: Option<fn() -> std::io::Result<()>>,
) -> Result<(), HostError> {
    let mut command = Command::new(program);
    rootless::keep_caps(&mut command);
    if let Some(before) = before {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: `before` makes one system call (unshare) and allocates
        // nothing, so it is safe between fork and exec.
        unsafe {
            command.pre_exec(before);
        }
    }
    let mut child = command
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                HostError::Missing(format!(
                    "`{program}` is not installed: hosts need iproute2 (apt-get install iproute2)"
                ))
            } else {
                HostError::System {
                    what: format!("starting {program}"),
                    detail: e.to_string(),
                }
            }
        })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| HostError::System {
        what: format!("waiting for {program}"),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("failed");
        Err(HostError::System {
            what: format!("{program} {}", args.join(" ")),
            detail: first.trim().to_string(),
        })
    }
}

/// What [`sweep`] removed: the namespaces of one shell that is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The PID that shell had.
    pub pid: u32,
    /// Its namespaces that were removed.
    pub netns: Vec<String>,
}

/// Removes the namespaces (and so the links) that socklab shells no longer
/// running left behind (killed with SIGKILL, say); returns what it removed.
/// A shell whose PID now belongs to another program counts as gone, unless
/// a thread of that PID is inside the namespace (a socklab installed under
/// another name).
pub fn sweep() -> Vec<Leftover> {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = owner(&name) else { continue };
        if pid != me && !socklab_alive(pid) && !inside(pid, &name) && !claimed(pid) {
            found.entry(pid).or_default().push(name);
        }
    }
    let mut out = Vec::new();
    for (pid, mut names) in found {
        names.sort();
        let script: String = names.iter().map(|n| format!("netns del {n}\n")).collect();
        // Another shell starting at the same moment may sweep the same
        // names: -force goes on past them.
        let _ = ip_args(&["-force"], None, &script);
        let left: Vec<String> = names
            .into_iter()
            .filter(|n| !Path::new(NETNS_DIR).join(n).exists())
            .collect();
        if !left.is_empty() {
            out.push(Leftover { pid, netns: left });
        }
    }
    out
}

/// Whether a thread of process `pid` is inside namespace `name` of
/// [`NETNS_DIR`]: a running shell parks one in each namespace it made,
/// whatever its program is called.
fn inside(pid: u32, name: &str) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(ns) = std::fs::metadata(Path::new(NETNS_DIR).join(name)) else {
        return false;
    };
    let want = format!("net:[{}]", ns.ino());
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_link(t.path().join("ns/net")).is_ok_and(|l| l.as_os_str() == want.as_str())
    })
}

/// Where running shells keep their claim on the namespaces they make.
const CLAIM_DIR: &str = "/run/socklab";

/// This shell's claim: `CLAIM_DIR/PID.lock`, locked (`flock`) while it has
/// namespaces. `None`: none taken, or it could not be made (no root, say;
/// a shell without root has a `/run/netns` of its own that no other shell
/// sweeps).
static CLAIM: std::sync::Mutex<Option<nix::fcntl::Flock<std::fs::File>>> =
    std::sync::Mutex::new(None);

/// This shell's claim file.
fn claim_path() -> std::path::PathBuf {
    Path::new(CLAIM_DIR).join(format!("{}.lock", std::process::id()))
}

/// Takes this shell's claim, if it holds none, before its first namespace
/// exists.
///
/// Without it a shell installed under another name (not `socklab`) was
/// exposed between `ip netns add` and parking its thread inside: another
/// shell starting then took the new namespace for a dead shell's and
/// removed it (seen in a parallel test run).
fn claim() {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let mut held = CLAIM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if held.is_some() {
        return;
    }
    let _ = std::fs::DirBuilder::new()
        .mode(0o755)
        .recursive(true)
        .create(CLAIM_DIR);
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(claim_path())
    else {
        return;
    };
    // Out of the way of the descriptors a transcript shows (a socket's
    // `fd=` in Python's repr): the lowest free number goes to the user's
    // next socket as it did before hosts existed.
    let file = high_fd(file);
    *held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).ok();
}

/// The lowest descriptor number a claim may take.
const CLAIM_FD_MIN: i32 = 900;

/// `file` moved to a descriptor at [`CLAIM_FD_MIN`] or above (as it is, if
/// that fails: an fd limit below it, say).
fn high_fd(file: std::fs::File) -> std::fs::File {
    use std::os::fd::FromRawFd as _;
    match nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(CLAIM_FD_MIN)) {
        // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing
        // else owns; the File takes it, and `file` (the old one) closes.
        Ok(fd) => unsafe { std::fs::File::from_raw_fd(fd) },
        Err(_) => file,
    }
}

/// Gives the claim up (its file removed) once this shell's namespaces are
/// gone (`Hosts::clear`); the next host made takes it again.
fn release_claim() {
    let mut held = CLAIM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if held.take().is_some() {
        let _ = std::fs::remove_file(claim_path());
    }
}

/// Whether a running shell with `pid` holds its claim. The claim of a
/// process that no longer exists is removed.
fn claimed(pid: u32) -> bool {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = Path::new(CLAIM_DIR).join(format!("{pid}.lock"));
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    else {
        return false;
    };
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock) {
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => true,
        Err(_) => false,
        Ok(_unlocked_on_drop) => {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(&path);
            }
            false
        }
    }
}

/// The PID in a namespace name this program makes (`sl1234-teacher`).
fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("sl")?;
    let (pid, _) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether `pid` is a running socklab: a process whose command name is
/// this program's (`socklab`, or whatever it was installed as).
fn socklab_alive(pid: u32) -> bool {
    let comm = |p: &str| std::fs::read_to_string(format!("/proc/{p}/comm")).ok();
    match (comm(&pid.to_string()), comm("self")) {
        (Some(theirs), Some(ours)) => theirs == ours || theirs.trim() == "socklab",
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A claim held by a live process counts, whatever its name; an
    /// unheld claim of a process that is gone does not, and is removed.
    /// (Other tests of this process make hosts, and so take and give up
    /// this process's own claim: this one uses PIDs no process can have,
    /// above the kernel's limit of 4194304.)
    #[test]
    fn a_held_claim_keeps_a_shell_alive_and_a_stale_one_is_removed() {
        let _ = std::fs::create_dir_all(CLAIM_DIR);
        let held_pid = 4_194_998u32;
        let held_path = Path::new(CLAIM_DIR).join(format!("{held_pid}.lock"));
        let Ok(file) = std::fs::File::create(&held_path) else {
            eprintln!("skipped: {CLAIM_DIR} cannot be written here (no root)");
            return;
        };
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .expect("locked");
        assert!(claimed(held_pid), "a held claim counts");
        assert!(held_path.exists(), "a held claim stays");
        drop(lock);
        assert!(!claimed(held_pid), "an unheld claim does not count");
        assert!(
            !held_path.exists(),
            "and is removed: no process has that PID"
        );
        let stale = Path::new(CLAIM_DIR).join("4194999.lock");
        std::fs::write(&stale, b"").expect("stale claim written");
        assert!(!claimed(4_194_999), "nobody holds it");
        assert!(!stale.exists(), "a gone process's claim is removed");
    }

    #[test]
    fn names_carry_the_pid() {
        assert_eq!(owner("sl1234-teacher"), Some(1234));
        assert_eq!(owner("sl1234-lan"), Some(1234));
        assert_eq!(owner("slx-teacher"), None);
        assert_eq!(owner("other"), None);
    }

    #[test]
    fn host_names_are_checked() {
        assert!(check_host_name("student30").is_ok());
        assert!(check_host_name("3x").is_err());
        assert!(check_host_name("a b").is_err());
        assert!(check_host_name("lan").is_err());
    }

    #[test]
    fn the_teacher_gets_the_lectures_address() {
        let h = Hosts::new();
        let plan = h
            .plan(&[
                ("student1".into(), None),
                ("teacher".into(), None),
                ("student2".into(), Some("192.168.24.2".parse().unwrap())),
                ("student3".into(), None),
            ])
            .unwrap();
        let addrs: Vec<String> = plan.iter().map(|p| p.1.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "192.168.24.1",
                "192.168.24.148",
                "192.168.24.2",
                "192.168.24.3"
            ]
        );
        assert!(h
            .plan(&[("a".into(), Some("10.0.0.1".parse().unwrap()))])
            .is_err());
        assert!(h.plan(&[("a".into(), None), ("a".into(), None)]).is_err());
    }

    #[test]
    fn netem_arguments() {
        let l = Link {
            delay: Some(Duration::from_millis(50)),
            jitter: Some(Duration::from_millis(5)),
            loss: Some(1.5),
            rate: None,
            down: false,
        };
        assert_eq!(l.qdisc().join(" "), "netem delay 50000us 5000us loss 1.5%");
        let r = Link {
            rate: Some("1mbit".into()),
            ..Link::default()
        };
        assert_eq!(r.qdisc()[..3].join(" "), "tbf rate 1mbit");
        assert_eq!(l.to_string(), "delay 50ms, jitter 5ms, loss 1.5%");
        assert_eq!(Link::default().to_string(), "up");
    }
}
