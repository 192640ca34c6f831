//! The shell's own words for a learner, in Chinese and English: what an OS
//! error means, and the hints under errors. One table keyed by message id;
//! the OS's own error text ("Connection refused (os error 111)") is never
//! translated, only the line that explains it.

use crate::lang::{self, Lang};

/// One message in both languages.
pub struct Msg {
    /// What code asks for.
    pub id: &'static str,
    /// 中文.
    pub zh: &'static str,
    /// English.
    pub en: &'static str,
}

/// Every message. `{name}` in a text is replaced by [`text_with`].
pub static MESSAGES: &[Msg] = &[
    Msg {
        id: "EADDRINUSE",
        zh: "已有别的 socket 占用这个地址和端口, 或者它上面的旧连接还停在 TIME_WAIT; 换一个端口, 或关闭占用它的 socket (SO_REUSEADDR 要在 bind 之前打开, 它只能越过 TIME_WAIT)",
        en: "another socket already holds this address and port, or old connections on it linger in TIME_WAIT; pick another port, or close the socket that holds it (SO_REUSEADDR, on before bind, gets past TIME_WAIT only)",
    },
    Msg {
        id: "EADDRNOTAVAIL",
        zh: "本机没有这个地址, 不能用它 bind 或 connect; 用 127.0.0.1, 或 `ifconfig` 列出的地址",
        en: "this machine has no such address to bind or connect from; use 127.0.0.1, or an address `ifconfig` lists",
    },
    Msg {
        id: "ECONNREFUSED",
        zh: "那个端口上没有程序在监听: 对方的内核用复位 (RST) 回答了 SYN",
        en: "nothing listens on that port: the peer's kernel answered the SYN with a reset",
    },
    Msg {
        id: "ECONNRESET",
        zh: "对方复位了连接 (它关闭时还有数据没读, 或者崩溃了); 途中的数据丢失; Python 会抛出 ConnectionResetError",
        en: "the peer reset the connection (it closed with data unread, or crashed); data in flight is lost; Python raises ConnectionResetError",
    },
    Msg {
        id: "EPIPE",
        zh: "连接已不能写 (对方复位了它, 或者我们关闭了写方向)",
        en: "the connection is closed for writing (the peer reset it, or we shut down writing)",
    },
    Msg {
        id: "ETIMEDOUT",
        zh: "没有回答: 对方或网络丢掉了数据包",
        en: "no answer came: the peer or the network dropped the packets",
    },
    Msg {
        id: "EHOSTUNREACH",
        zh: "从本机到那个地址没有路由",
        en: "no route to that address from this machine",
    },
    Msg {
        id: "EACCES",
        zh: "1024 以下的端口需要特权 (root 或 CAP_NET_BIND_SERVICE); 请用 1024 或更大的端口",
        en: "ports below 1024 need privilege (root or CAP_NET_BIND_SERVICE); use a port of 1024 or more",
    },
    Msg {
        id: "exec-denied",
        zh: "这个用户不能运行那个程序: 它不可执行, 或者 PATH 上的某个目录不可读",
        en: "this user may not run that program: it is not executable, or a directory on PATH is not readable",
    },
    Msg {
        id: "ENOTCONN",
        zh: "socket 还没有连接: 先 connect (客户端) 或 accept (服务器端)",
        en: "the socket is not connected: connect (client) or accept (server) first",
    },
    Msg {
        id: "ECONNABORTED",
        zh: "这个 socket 之前的 connect 失败了, connect 失败过的 socket 不能再用: 新建一个",
        en: "an earlier connect on this socket failed, and a socket whose connect failed cannot be used again: make a new one",
    },
    Msg {
        id: "EISCONN",
        zh: "socket 已经连接了",
        en: "the socket is connected already",
    },
    Msg {
        id: "EINVAL",
        zh: "这个调用和 socket 现在的状态不符 (例如 bind 两次, 或在已连接的 socket 上 listen)",
        en: "the call does not fit the socket's state (for example bind twice, or listen on a connected socket)",
    },
    Msg {
        id: "EMFILE",
        zh: "打开的文件太多: 关掉一些 socket, 或提高上限 (ulimit -n)",
        en: "too many open files: close some sockets, or raise the limit (ulimit -n)",
    },
    Msg {
        id: "EAFNOSUPPORT",
        zh: "地址族和 socket 不符 (IPv4 和 IPv6)",
        en: "the address family does not match the socket (IPv4 vs IPv6)",
    },
    Msg {
        id: "EMSGSIZE",
        zh: "数据报比一个 UDP 包能装的大 (IPv4 最多 65507 字节数据, IPv6 最多 65527)",
        en: "the datagram is larger than one UDP packet can carry (65507 bytes of payload over IPv4, 65527 over IPv6)",
    },
    Msg {
        id: "ENOPROTOOPT",
        zh: "这种 socket 没有这个选项",
        en: "this socket type has no such option",
    },
    Msg {
        id: "send-broadcast",
        zh: "向广播地址发送要先 `set NAME broadcast on` (SO_BROADCAST); 否则内核拒绝, 一个包也不会离开本机",
        en: "a broadcast address needs `set NAME broadcast on` first (SO_BROADCAST); without it the kernel refuses, and no packet leaves the machine",
    },
    Msg {
        id: "udp-refused",
        zh: "那个 UDP 端口上没有程序: 它的内核用 ICMP 端口不可达回答了之前的数据报, 只有已连接的 UDP socket 才听得到",
        en: "nothing listens on that UDP port: its kernel answered an earlier datagram with ICMP port-unreachable, which only a connected UDP socket hears",
    },
    Msg {
        id: "setsockopt-range",
        zh: "内核拒绝了这个选项值: 它超出了选项的范围 (`help set` 列出范围)",
        en: "the kernel refused this value for the option: it is out of the option's range (`help set` lists them)",
    },
    Msg {
        id: "in-use-reuseaddr-on",
        zh: "SO_REUSEADDR 已经打开, 所以占用这个地址和端口的是一个绑定或监听在它上面的 socket, 或者一个停在 TIME_WAIT 的旧连接, 而它自己的 socket 没有 SO_REUSEADDR (Linux 要求两边都有); 换一个端口, 或关闭那个 socket (`sockets` 列出本 shell 的 socket)",
        en: "SO_REUSEADDR is on already, so what holds this address and port is a socket bound or listening on it, or an old connection in TIME_WAIT whose own socket did not have SO_REUSEADDR (Linux needs it on both); pick another port, or close that socket (`sockets` lists this shell's)",
    },
    Msg {
        id: "in-use-reuseaddr-off",
        zh: "已有别的 socket 占用这个地址和端口 (或者它上面的旧连接还停在 TIME_WAIT); 换一个端口, 或在 bind 之前 `set {name} reuseaddr on` 以越过 TIME_WAIT",
        en: "another socket already holds this address and port (or old connections on it linger in TIME_WAIT); pick another port, or `set {name} reuseaddr on` before bind to get past TIME_WAIT",
    },
    Msg {
        id: "send-stalled",
        zh: "对方没有在读: 它的接收缓冲区和我们的发送缓冲区都满了, 剩下的只能等着 (sendall 会阻塞)",
        en: "the peer is not reading: its receive buffer and our send buffer are full, so the rest waits (sendall blocks)",
    },
    Msg {
        id: "help-lists",
        zh: "`help` 列出所有命令",
        en: "`help` lists the commands",
    },
    Msg {
        id: "note-already-bound",
        zh: "注意: {name} 已经绑定了; {opt} 只影响它之后的 bind, 所以现在设置它什么也不改变",
        en: "note: {name} is already bound; {opt} only affects a bind that comes after it, so this changes nothing now",
    },
    Msg {
        id: "note-listen-bound",
        zh: "注意: {name} 还没有绑定, 所以 listen 像操作系统那样先绑定了它: 绑定到 {addr} (任意地址, 一个空闲端口)",
        en: "note: {name} was not bound, so listen bound it first, as the OS does: to {addr} (any address, a free port)",
    },
    Msg {
        id: "note-sendto-bound",
        zh: "注意: {name} 还没有绑定, 所以 sendto 像操作系统那样先绑定了它: 绑定到 {addr} (任意地址, 一个空闲端口); 回复会回到那里",
        en: "note: {name} was not bound, so sendto bound it first, as the OS does: to {addr} (any address, a free port); replies come back there",
    },
    Msg {
        id: "note-lab-every-interface",
        zh: "注意: {addr} 代表 {host} 的所有网卡: 其他实验室主机都能连接它",
        en: "note: {addr} is every interface of {host}: the other lab hosts can connect to it",
    },
    Msg {
        id: "note-lab-lan",
        zh: "注意: {addr} 是 {host} 的局域网网卡: 其他实验室主机都能连接它",
        en: "note: {addr} is the LAN interface of {host}: the other lab hosts can connect to it",
    },
    Msg {
        id: "note-every-interface-connect",
        zh: "注意: {addr} 代表本机的所有网卡: 其他机器都能连接它",
        en: "note: {addr} is every interface of this machine: other machines can connect to it",
    },
    Msg {
        id: "note-every-interface-send",
        zh: "注意: {addr} 代表本机的所有网卡: 其他机器都能向它发送",
        en: "note: {addr} is every interface of this machine: other machines can send to it",
    },
    Msg {
        id: "note-non-loopback-connect",
        zh: "注意: {addr} 不是回环地址: 其他机器都能连接它",
        en: "note: {addr} is a non-loopback address: other machines can connect to it",
    },
    Msg {
        id: "note-not-loopback-send",
        zh: "注意: {addr} 不是回环地址: 其他机器都能向它发送",
        en: "note: {addr} is not loopback: other machines can send to it",
    },
    Msg {
        id: "udp-connect",
        zh: "UDP: 没有发出任何数据包; connect 只是为 send 和 recv 固定了对方",
        en: "UDP: no packet was sent; connect only fixes the peer for send and recv",
    },
    Msg {
        id: "udp-truncated",
        zh: "这个数据报有 {size} 字节; 其中 {lost} 字节放不下, 丢失了 (一个数据报只能被完整地读一次)",
        en: "the datagram had {size} bytes; {lost} did not fit and are lost (a datagram is read whole, once)",
    },
    Msg {
        id: "ping-refused",
        zh: "主机回答了: 那个端口上没有程序在监听",
        en: "the host answered: nothing listens on that port",
    },
    Msg {
        id: "accept-timeout",
        zh: "没有客户端来: accept 一直在等客户端连接 {name} (之前已接受 {n} 个); `connect {name}` 可以造一个",
        en: "no client came: accept waited for a client to connect to {name} ({n} accepted before); `connect {name}` makes one",
    },
    Msg {
        id: "syn-timeout",
        zh: "{addr} 没有回答我们的 SYN: 它的监听队列满了, 或者它 (或网络) 丢掉了数据包; 这个 socket 停在 SYN_SENT",
        en: "no answer to our SYN came from {addr}: its listen queue is full, or it (or the network) drops packets; the socket stays in SYN_SENT",
    },
    Msg {
        id: "serve-iterative",
        zh: "iterative: 一次一个客户端; 下一个在 backlog 队列里等着, 直到 `close {name}.N` (讲义的循环)",
        en: "iterative: one client at a time; the next waits in the backlog until `close {name}.N` (the lecture's loop)",
    },
    Msg {
        id: "serve-thread",
        zh: "thread: 每个客户端由一个操作系统线程来读",
        en: "thread: one OS thread reads each client",
    },
    Msg {
        id: "recv-nothing-from",
        zh: "什么也没收到: recv 一直在等对方 {peer} 发送 ({name} 总共收到了 {bytes})",
        en: "nothing arrived: recv waited for the peer {peer} to send ({name} has received {bytes} in all)",
    },
    Msg {
        id: "recv-nothing",
        zh: "什么也没收到",
        en: "nothing arrived",
    },
    Msg {
        id: "serve-files-max-replace",
        zh: "上传的文件只存进 {dir}, 不会到别处 (最多 {max} 字节; 同名的已有文件会被替换); 其中的文件可以下载",
        en: "uploads go into {dir} and nowhere else (at most {max} bytes; existing files are replaced); its files can be downloaded",
    },
    Msg {
        id: "serve-files-max-keep",
        zh: "上传的文件只存进 {dir}, 不会到别处 (最多 {max} 字节; 同名的已有文件会保留); 其中的文件可以下载",
        en: "uploads go into {dir} and nowhere else (at most {max} bytes; existing files are kept); its files can be downloaded",
    },
    Msg {
        id: "serve-files-replace",
        zh: "上传的文件只存进 {dir}, 不会到别处 (大小只受空闲空间限制; 同名的已有文件会被替换); 其中的文件可以下载",
        en: "uploads go into {dir} and nowhere else (no size limit but free space; existing files are replaced); its files can be downloaded",
    },
    Msg {
        id: "serve-files-keep",
        zh: "上传的文件只存进 {dir}, 不会到别处 (大小只受空闲空间限制; 同名的已有文件会保留); 其中的文件可以下载",
        en: "uploads go into {dir} and nowhere else (no size limit but free space; existing files are kept); its files can be downloaded",
    },
    Msg {
        id: "serve-raw",
        zh: "raw: 每个客户端在关闭之前发来的内容都存为 {path} (没有文件名, 大小和摘要: 什么也无法验证)",
        en: "raw: what each client sends until it closes is saved as {path} (no name, size or digest: nothing can be verified)",
    },
    Msg {
        id: "raw-unverified",
        zh: "raw 不带文件名, 大小和摘要: 接收方分不清完整的文件和被截断的文件",
        en: "raw carries no name, size or digest: the receiver cannot tell a whole file from a cut one",
    },
    Msg {
        id: "no-socket-near",
        zh: "你是不是想用 '{name}'? (`sockets` 列出所有 socket)",
        en: "did you mean '{name}'? (`sockets` lists them)",
    },
    Msg {
        id: "no-sockets-yet",
        zh: "还没有任何 socket: `socket tcp`, `listen PORT` 或 `connect HOST PORT` 会创建一个",
        en: "there are no sockets yet: `socket tcp`, `listen PORT` or `connect HOST PORT` make one",
    },
];

/// The message `id`.
pub fn get(id: &str) -> Option<&'static Msg> {
    MESSAGES.iter().find(|m| m.id == id)
}

/// Message `id` in the session's language (both: English, then the Chinese
/// on the next line, indented by `sep`). An unknown id is shown as itself.
pub fn text(id: &str, sep: &str) -> String {
    text_in(lang::current(), id, sep)
}

/// Message `id` in `lang`.
pub fn text_in(lang: Lang, id: &str, sep: &str) -> String {
    match get(id) {
        Some(m) => lang.pick(m.zh, m.en, sep),
        None => id.to_string(),
    }
}

/// Message `id` with `{name}` replaced.
pub fn text_with(id: &str, sep: &str, name: &str) -> String {
    text(id, sep).replace("{name}", name)
}

/// Message `id` with each `{KEY}` of `args` replaced by its value (in one
/// pass, so a value is never read as a placeholder).
pub fn fill(id: &str, sep: &str, args: &[(&str, &str)]) -> String {
    fill_in(lang::current(), id, sep, args)
}

/// [`fill`] in `lang`.
pub fn fill_in(lang: Lang, id: &str, sep: &str, args: &[(&str, &str)]) -> String {
    let text = text_in(lang, id, sep);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let key = &after[..close];
            args.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Message `id` inside a line, in parentheses: under `both`, the English
/// and the Chinese side by side (`(english; 中文)`).
pub fn inline(id: &str) -> String {
    match (lang::current(), get(id)) {
        (_, None) => format!("({id})"),
        (Lang::Zh, Some(m)) => format!("({})", m.zh),
        (Lang::En, Some(m)) => format!("({})", m.en),
        (Lang::Both, Some(m)) => format!("({}; {})", m.en, m.zh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_both_languages_are_there() {
        for (i, m) in MESSAGES.iter().enumerate() {
            assert!(MESSAGES[..i].iter().all(|o| o.id != m.id), "{}", m.id);
            assert!(!m.zh.is_empty() && !m.en.is_empty(), "{}", m.id);
            // The Chinese is Chinese, and placeholders match.
            assert!(m.zh.chars().any(|c| c > '\u{2e80}'), "{}", m.id);
            let keys = |t: &str| {
                let mut k: Vec<String> = t
                    .split('{')
                    .skip(1)
                    .filter_map(|p| p.split_once('}').map(|(k, _)| k.to_string()))
                    .collect();
                k.sort();
                k.dedup();
                k
            };
            assert_eq!(keys(m.zh), keys(m.en), "{}", m.id);
        }
    }

    #[test]
    fn placeholders_are_filled_once() {
        assert_eq!(
            fill_in(
                Lang::Both,
                "note-lab-lan",
                "   ",
                &[("addr", "10.0.0.1"), ("host", "{addr}")]
            ),
            "note: 10.0.0.1 is the LAN interface of {addr}: the other lab hosts can connect to it\n   注意: 10.0.0.1 是 {addr} 的局域网网卡: 其他实验室主机都能连接它"
        );
        assert_eq!(
            fill_in(Lang::Zh, "no-socket-near", "", &[("name", "srv")]),
            "你是不是想用 'srv'? (`sockets` 列出所有 socket)"
        );
    }

    #[test]
    fn languages_pick() {
        assert_eq!(
            text_in(Lang::En, "EISCONN", "  "),
            "the socket is connected already"
        );
        assert_eq!(text_in(Lang::Zh, "EISCONN", "  "), "socket 已经连接了");
        assert_eq!(
            text_in(Lang::Both, "EISCONN", "  "),
            "the socket is connected already\n  socket 已经连接了"
        );
    }
}
