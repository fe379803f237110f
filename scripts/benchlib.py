"""Shared by the benchmark scripts (bench-nats, bench-grpc): release binaries of this
repository, free ports, processes stopped and their data removed on exit, server CPU time
from /proc, and medians."""

import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pids):
    """utime + stime of the processes, in seconds (fields 14 and 15 of /proc/PID/stat)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            # The command name may hold spaces: split after its closing parenthesis.
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def wait_for(what, check, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


class Processes:
    """Processes of one system under test, stopped and their data removed on exit."""

    def __init__(self, name):
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.procs = []

    def spawn(self, name, argv):
        log = open(self.dir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        self.procs.append((name, proc))
        return proc

    def pids(self, prefix):
        return [p.pid for name, p in self.procs if name.startswith(prefix)]

    def check_alive(self):
        for name, proc in self.procs:
            if proc.poll() is not None:
                log = (self.dir / f"{name}.log").read_text(errors="replace")
                # The cause is at the head (a backtrace may follow it); the end at the tail.
                if len(log) > 6000:
                    log = log[:3000] + "\n[...]\n" + log[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def write_conf(path, entries):
    path.write_text("".join(f"{k}={v}\n" for k, v in entries))


def median(runs, key):
    return statistics.median(r[key] for r in runs)
