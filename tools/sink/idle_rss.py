#!/usr/bin/python3
"""idle_rss.py: RSS of ringmail-sink with N idle SMTP connections open (default 10,000).

Starts the sink on 127.0.0.1:0, opens N connections, reads each greeting (so every connection is
accepted and served), and prints the sink's VmRSS before and after, and per connection. Raises
this process's open-files limit; kills only the sink it started.
usage: idle_rss.py /path/to/ringmail-sink [N] [extra sink flags...]
"""
import os, resource, signal, socket, subprocess, sys, tempfile, time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    sink, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = tempfile.mkdtemp(prefix="sink-rss-")
    ready = os.path.join(work, "ready")
    proc = subprocess.Popen([sink, "--listen", "127.0.0.1:0", "--ready-file", ready, "--quiet", *sys.argv[3:]],
                            stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(500):
            if os.path.exists(ready):
                break
            time.sleep(0.02)
        port = int(open(ready).read().split()[0].rsplit(":", 1)[1])
        before = rss_kib(proc.pid)
        conns = []
        t0 = time.monotonic()
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            conns.append(s)
            if len(conns) % 500 == 0:  # read greetings in batches so the backlog never overflows
                for c in conns[-500:]:
                    assert c.recv(200).startswith(b"220 ")
        for c in conns[len(conns) - len(conns) % 500:]:
            assert c.recv(200).startswith(b"220 ")
        setup = time.monotonic() - t0
        time.sleep(0.5)  # measurement settle, not synchronisation
        after = rss_kib(proc.pid)
        print(f"{n} idle connections opened in {setup:.2f} s; sink VmRSS {before} KiB before, {after} KiB after; "
              f"{(after - before) * 1024 / n:.0f} bytes per connection")
        for c in conns:
            c.close()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        print(out.strip())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for name in os.listdir(work):
            os.unlink(os.path.join(work, name))
        os.rmdir(work)


if __name__ == "__main__":
    main()
