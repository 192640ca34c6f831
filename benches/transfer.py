#!/usr/bin/env python3
"""Upload throughput: socklab's verified upload (name, size, BLAKE3, fsync,
atomic rename) against a reference measured in the same run on the same
machine: the lecture's way, a plain Python socket copy (recv/write until EOF,
no digest, no fsync). Loopback only; every loop bounded.

usage: benches/transfer.py [SIZE_MIB] [ROUNDS]    (needs `cargo build --release`)
"""
import os, socket, subprocess, sys, tempfile, threading, time

SIZE = int(sys.argv[1]) if len(sys.argv) > 1 else 256
ROUNDS = min(int(sys.argv[2]) if len(sys.argv) > 2 else 3, 10)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOCKLAB = os.path.join(ROOT, "target", "release", "socklab")


def python_copy(src, dst_dir, fsync=False):
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
    port = srv.getsockname()[1]
    def serve():
        conn, _ = srv.accept()
        with open(os.path.join(dst_dir, "copy.bin"), "wb") as f:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                f.write(data)
            if fsync:
                f.flush(); os.fsync(f.fileno())
        conn.close()
    t = threading.Thread(target=serve); t.start()
    start = time.perf_counter()
    c = socket.create_connection(("127.0.0.1", port))
    with open(src, "rb") as f:
        while True:
            chunk = f.read(65536)
            if not chunk:
                break
            c.sendall(chunk)
    c.shutdown(socket.SHUT_WR); c.close(); t.join(timeout=120)
    elapsed = time.perf_counter() - start
    srv.close()
    return elapsed


def socklab_upload(src, dst_dir, n):
    script = f"serve files {dst_dir} 0 as files overwrite\nupload files {src} as up{n}.bin\n"
    start = time.perf_counter()
    out = subprocess.run([SOCKLAB], input=script.encode(), capture_output=True, timeout=300)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"socklab failed: {out.stderr.decode()}")
    return elapsed


def socklab_raw(src, dst_dir, n):
    script = f"serve raw {dst_dir}/raw{n}.bin 0 as raw overwrite\nupload --raw raw {src}\n"
    start = time.perf_counter()
    out = subprocess.run([SOCKLAB], input=script.encode(), capture_output=True, timeout=300)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"socklab failed: {out.stderr.decode()}")
    return elapsed


def main():
    if not os.path.exists(SOCKLAB):
        sys.exit("build first: cargo build --release")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src.bin")
        with open(src, "wb") as f:
            for _ in range(SIZE):
                f.write(os.urandom(1 << 20))
        dst = os.path.join(tmp, "dst"); os.mkdir(dst)
        best_py, best_sl, best_raw, best_pys = (float("inf"),) * 4
        for n in range(ROUNDS):
            best_py = min(best_py, python_copy(src, dst))
            best_pys = min(best_pys, python_copy(src, dst, fsync=True))
            best_sl = min(best_sl, socklab_upload(src, dst, n))
            best_raw = min(best_raw, socklab_raw(src, dst, n))
        py, sl, raw, pys = SIZE / best_py, SIZE / best_sl, SIZE / best_raw, SIZE / best_pys
        print(f"{SIZE} MiB over 127.0.0.1, best of {ROUNDS}:")
        print(f"  python3 socket copy (no digest, no fsync): {py:8.1f} MiB/s")
        print(f"  python3 socket copy + fsync:               {pys:8.1f} MiB/s")
        print(f"  socklab upload (BLAKE3, fsync, rename):    {sl:8.1f} MiB/s  (whole process, startup included)")
        print(f"  socklab upload --raw (no digest to check): {raw:8.1f} MiB/s  (whole process, startup included)")
        print(f"  ratios to python3: verified {sl / py:.2f}, raw {raw / py:.2f}; to python3 + fsync: verified {sl / pys:.2f}")


main()
