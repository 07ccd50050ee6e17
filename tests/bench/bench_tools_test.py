"""Tests of the benchmark harness's own tools (no root): the report's paired statistic
(tools/bench/report.py) and skiff_bench_conn's turn-taking clients on loopback.

usage: bench_tools_test.py REPO_ROOT SKIFF_BENCH_CONN"""
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

ROOT, CONN = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(ROOT, "tools", "bench"))
import report  # noqa: E402


class PairedRatio(unittest.TestCase):
    def test_identical_rounds_give_a_zero_width_interval(self):
        r = report.paired_ratio([0.97, 0.97, 0.97])
        self.assertAlmostEqual(r["mean"], 0.97)
        self.assertAlmostEqual(r["low"], 0.97)
        self.assertAlmostEqual(r["high"], 0.97)
        self.assertEqual(r["rounds"], 3)

    def test_geometric_mean_and_t_interval(self):
        xs = [0.9, 1.0, 1.1, 1.0]
        r = report.paired_ratio(xs)
        logs = [math.log(x) for x in xs]
        m = sum(logs) / 4
        sd = math.sqrt(sum((x - m) ** 2 for x in logs) / 3)
        h = 3.182 * sd / 2  # t(0.975, 3 degrees of freedom)
        self.assertAlmostEqual(r["mean"], math.exp(m))
        self.assertAlmostEqual(r["low"], math.exp(m - h))
        self.assertAlmostEqual(r["high"], math.exp(m + h))
        self.assertLess(r["low"], 1.0)
        self.assertGreater(r["high"], 1.0)

    def test_one_round_has_no_interval(self):
        self.assertIsNone(report.paired_ratio([0.95]))

    def test_per_round_prefers_the_paired_floor(self):
        res = [{"conn_per_s": 90.0, "rep": 1, "floor_pair": {"conn_per_s": 100.0}},
               {"conn_per_s": 95.0, "rep": 2, "floor_pair": None}]
        self.assertEqual(report.per_round(res, {1: 50.0, 2: 100.0}), [0.9, 0.95])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server():
    """A `skiff_bench_conn serve` on a free loopback port, once it accepts connections (a
    fixed sleep is not enough on a loaded machine); another port if it could not bind."""
    for _ in range(5):
        port = free_port()
        server = subprocess.Popen([CONN, "serve", "--port", str(port)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return server, port
            except OSError:
                time.sleep(0.05)
        server.kill()
        server.wait()
    raise RuntimeError("skiff_bench_conn serve did not come up")


class TurnTaking(unittest.TestCase):
    def test_two_clients_alternate_and_each_runs_its_duration(self):
        server, port = start_server()
        try:
            with tempfile.TemporaryDirectory() as d:
                fa, fb = os.path.join(d, "a"), os.path.join(d, "b")
                os.mkfifo(fa)
                os.mkfifo(fb)
                common = [CONN, "client", "--targets", f"127.0.0.1:{port}", "--duration", "0.6",
                          "--warmup", "0.2", "--slice-ms", "50"]
                t0 = time.monotonic()
                b = subprocess.Popen(common + ["--turn-in", fb, "--turn-out", fa],
                                     stdout=subprocess.PIPE)
                a = subprocess.Popen(common + ["--turn-in", fa, "--turn-out", fb],
                                     stdout=subprocess.PIPE)
                tok = os.open(fa, os.O_RDWR)  # held open: a FIFO drops data nobody holds
                os.write(tok, b"t")
                out_a, _ = a.communicate(timeout=30)
                out_b, _ = b.communicate(timeout=30)
                wall = time.monotonic() - t0
                os.close(tok)
            self.assertEqual(a.returncode, 0)
            self.assertEqual(b.returncode, 0)
            ra, rb = json.loads(out_a), json.loads(out_b)
            for r in (ra, rb):
                self.assertEqual(r["errors"], 0)
                self.assertGreater(r["connections"], 0)
                # Its own active time: at least --duration, about one slice more (generous:
                # a loaded machine oversleeps).
                self.assertGreaterEqual(r["seconds"], 0.6)
                self.assertLess(r["seconds"], 0.6 + 0.5)
            # Turns, not together: the two (warm-up + duration) spans add up.
            self.assertGreater(wall, 2 * (0.6 + 0.2) * 0.95)
        finally:
            server.kill()
            server.wait()

    def test_a_client_whose_peer_never_answers_fails(self):
        with tempfile.TemporaryDirectory() as d:
            fa, fb = os.path.join(d, "a"), os.path.join(d, "b")
            os.mkfifo(fa)
            os.mkfifo(fb)
            server, port = start_server()
            try:
                a = subprocess.Popen([CONN, "client", "--targets", f"127.0.0.1:{port}",
                                      "--duration", "5", "--warmup", "0", "--turn-in", fa,
                                      "--turn-out", fb], stderr=subprocess.PIPE)
                tok = os.open(fa, os.O_RDWR)
                os.write(tok, b"t")  # its first turn; nobody ever answers
                _, err = a.communicate(timeout=30)
                os.close(tok)
                self.assertNotEqual(a.returncode, 0)
                self.assertIn(b"no turn from the other client", err)
            finally:
                server.kill()
                server.wait()

    def test_turn_in_without_turn_out_is_refused(self):
        p = subprocess.run([CONN, "client", "--targets", "127.0.0.1:1", "--turn-in", "/x"],
                           capture_output=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--turn-in and --turn-out go together", p.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]])
