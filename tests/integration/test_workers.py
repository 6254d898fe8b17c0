"""Worker placement: --worker-cpus pins each worker thread (and the io_uring worker threads it
starts) to a CPU, checked in /proc; bad lists stop the daemon at start with a clear message."""
import os
import subprocess
import unittest

from harness import DaemonTestCase, binary


def allowed_cpus_by_thread(pid):
    """{tid: Cpus_allowed_list} for every thread of process pid."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    out[int(tid)] = line.split(":", 1)[1].strip()
    return out


class WorkerCpusTest(DaemonTestCase):
    def test_workers_run_on_the_listed_cpus_and_take_mail(self):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            self.skipTest("needs two CPUs")
        last = cpus[-1]
        d = self.start_daemon("--hold", "--workers", "3", "--worker-cpus", f"{last},{cpus[0]}")
        log = d.read_log()
        self.assertIn(f"worker 0 runs on CPU {last}", log)
        self.assertIn(f"worker 1 runs on CPU {cpus[0]}", log)
        self.assertIn(f"worker 2 runs on CPU {last}", log, "the list wraps around")
        # Mail still flows: 200 messages over 6 connections reach the spool (so each worker's
        # ring did file I/O, and its io-wq threads, if any, exist now).
        p = subprocess.run([binary("ringmail-inject"), "--target", f"127.0.0.1:{d.port}", "--count", "200",
                            "--connections", "6", "--size", "2000", "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        threads = allowed_cpus_by_thread(d.proc.pid)
        on_last = [t for t, c in threads.items() if c == str(last)]
        on_first = [t for t, c in threads.items() if c == str(cpus[0])]
        self.assertGreaterEqual(len(on_last), 2, threads)   # workers 0 and 2 (and their io-wq threads)
        self.assertGreaterEqual(len(on_first), 1, threads)  # worker 1
        self.assertNotIn(threads[d.proc.pid], (str(last), str(cpus[0])), "the main thread is not pinned")
        self.assertEqual(d.stop(), 0)

    def refused(self, cpu_list):
        return self.refused_start("--worker-cpus", cpu_list)

    def test_bad_lists_stop_the_daemon_with_the_reason(self):
        self.assertIn("--worker-cpus: bad CPU range '3-1'", self.refused("3-1"))
        self.assertIn("--worker-cpus: CPU 0 is listed twice", self.refused("0,0"))
        missing = max(os.sched_getaffinity(0)) + 1
        self.assertIn(f"--worker-cpus: CPU {missing} is not available to this process", self.refused(str(missing)))


if __name__ == "__main__":
    unittest.main()
