#!/usr/bin/env python3
"""Writes the small seed corpus in fuzz/seeds/TARGET/ (see README.md).

Each input starts as the targets read it: a byte saying how many cuts, the
cuts (u16 big-endian), then the target's own bytes.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def cuts(*at):
    return bytes([len(at)]) + b"".join(struct.pack(">H", c) for c in at)


def pre(kind):
    return b"SLFT\x01" + bytes([kind])


def text(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def header(name, size, offset, alg=1):
    return pre(1) + bytes([alg]) + struct.pack(">QQ", size, offset) + text(name)


def request(name, offset):
    return pre(2) + struct.pack(">Q", offset) + text(name)


def reply(status, offset, reason):
    return pre(3) + bytes([status]) + struct.pack(">Q", offset) + text(reason)


def trailer(digest=bytes(range(32)), alg=1):
    return pre(4) + bytes([alg]) + digest


SEEDS = {
    "frame_raw": [cuts(), cuts(1, 3) + b"hello\nworld", cuts(2) + b"\x00\xff"],
    "frame_line": [
        cuts() + b"\x08" + b"hello\nworld\r\n\n",
        cuts(3, 5) + b"\x04" + b"abcd\r\nabcde\n",
        cuts() + b"\x00" + b"\n\r\n",
        cuts() + b"\xff" + b"a\rb\r\r\nlong line without end",
    ],
    "frame_len": [
        cuts() + b"\x10" + b"\x00\x00\x00\x02hi\x00\x00\x00\x00",
        cuts(2, 6) + b"\x04" + b"\x00\x00\x00\x05hello",
        cuts() + b"\xff" + b"\xff\xff\xff\xff",
        cuts() + b"\x00" + b"\x00\x00\x00\x00\x00\x00",
    ],
    "header": [
        cuts() + header("hg.txt", 1000, 0),
        cuts(7, 20) + header("绕口令.txt", 2**64 - 1, 2**64 - 1),
        cuts() + header("a" * 255, 5, 5),
        cuts() + header("x", 1, 2),
        cuts() + header(b"\xff\xfe", 1, 0),
        cuts() + header("x", 1, 0, alg=2),
        cuts() + pre(1)[:4] + b"\x02\x01",
        cuts() + request("x", 0),
    ],
    "request": [
        cuts() + request("hg.txt", 0),
        cuts(3) + request("b", 2**63) + request("c", 1),
        cuts() + pre(2) + bytes(8) + b"\x01\x00",
        cuts() + header("x", 1, 0),
    ],
    "reply": [
        cuts() + reply(0, 0, ""),
        cuts(9) + reply(12, 77, "not found: x"),
        cuts() + reply(5, 0, "d" * 1024),
        cuts() + pre(3) + b"\x0d" + bytes(8) + b"\x00\x00",
        cuts() + pre(3) + b"\x00" + bytes(8) + b"\x04\x01",
    ],
    "trailer": [
        cuts() + trailer(),
        cuts(1, 38) + trailer() + trailer(bytes(32)),
        cuts() + trailer(alg=0),
    ],
    "message": [
        cuts() + header("a", 3, 0) + request("b", 1) + reply(0, 1, "ok") + trailer(),
        cuts(5, 40) + reply(7, 0, "bad header") + trailer(),
        cuts() + b"SLFT\x01\x09",
        cuts() + b"SLFU\x01\x01",
        cuts() + b"SLFT\x02\x01",
    ],
    "upload": [
        cuts() + bytes(8) + header("f", 5, 5) + b"hello" + trailer(),
        cuts(30, 41) + struct.pack(">Q", 2) + header("f", 5, 5) + b"llo" + trailer(),
        cuts() + struct.pack(">Q", 9) + header("f", 0, 0) + trailer(),
        cuts() + bytes(8) + header("f", 3, 0) + b"ab",
    ],
    "name": [
        b"hg.txt", "绕口令.txt".encode(), b"..", b".", b"/etc/passwd", b"C:\\x",
        b"a\x00b", b"\x1b[2J", b"a\\b", "\u202etxt.exe".encode(), b"a" * 256,
    ],
    "lexer": [
        b"send s \"hello\\n\" # greet",
        b"connect c 127.0.0.1 8080",
        b"socket tcp as s1",
        b"set s timeout 250ms",
        b"frame srv.1 len 64K",
        b"connect c [::1] 80",
        b"send c hex:48656C6c6f 'it\\'s' \"\\u{1F600}\\x00\"",
        b"host-name.example 1.5s 0 65535 70000 -1 [::1]:80",
        b"\"unterminated \\q",
        b"\t# just a comment\r\n",
    ],
}

for target, inputs in SEEDS.items():
    folder = os.path.join(HERE, "seeds", target)
    os.makedirs(folder, exist_ok=True)
    for n, data in enumerate(inputs):
        with open(os.path.join(folder, f"seed-{n:02}"), "wb") as f:
            f.write(data)
