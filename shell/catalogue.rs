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
            assert_eq!(m.zh.contains("{name}"), m.en.contains("{name}"), "{}", m.id);
        }
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
