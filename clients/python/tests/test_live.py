"""The client against a real gateway and endpoint (see live.py): numpy on a slice of a large object,
results by reference, the executor, and errors carrying Ferry's codes."""

import concurrent.futures as cf
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

from ferry import FerryError, ObjectRef, TaskCancelled, TaskFailed, WaitTimeout

from .live import live_client

MiB = 1024 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))


def slice_mean(ref, start, stop):
    import numpy as np

    return float(np.frombuffer(ref.slice(start, stop), dtype=np.float64).mean())


def square(x):
    return x * x


def scaled(x, factor=1):
    return x * factor


def ramp(n, dtype):
    import numpy as np

    return np.arange(n, dtype=dtype).reshape(-1, 256)


def raw_bytes(n):
    return bytes(range(256)) * (n // 256)


def fails(x):
    if x > 0:
        raise ValueError(f"x must not be positive, got {x}")
    return x


def sleeps(seconds):
    import time

    time.sleep(seconds)
    return seconds


class LiveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = live_client()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def served_to_endpoint(self):
        readers = self.client.object_stats()["readers"]
        return readers.get(f"endpoint:{self.client.endpoint}", {"bytes_served": 0, "requests": 0})

    def test_acceptance_mean_over_a_1_mib_slice_of_64_mib_serves_one_chunk(self):
        data = np.random.default_rng().normal(size=64 * MiB // 8)  # new bytes each run: no chunk cached yet
        ref = self.client.put(data)
        self.assertIsInstance(ref, ObjectRef)
        self.assertEqual((ref.size, ref.sha256), (64 * MiB, hashlib.sha256(data.tobytes()).hexdigest()))
        self.assertEqual(dict(ref), {"$ref": ref.id})
        fn = self.client.register(slice_mean)
        start = 37 * MiB
        before = self.served_to_endpoint()
        mean = self.client.run(fn, ref, start, start + MiB, timeout=60)
        after = self.served_to_endpoint()
        expected = float(data[start // 8 : (start + MiB) // 8].mean())
        self.assertAlmostEqual(mean, expected, places=12)
        self.assertEqual(after["bytes_served"] - before["bytes_served"], MiB, "the gateway serves the one covering 1 MiB chunk")

    def test_registering_the_same_source_twice_gives_the_same_id(self):
        self.assertEqual(self.client.register(square), self.client.register(square))

    def test_submit_result_wait_all_and_kwargs(self):
        t = self.client.submit(square, 12)
        self.assertEqual(self.client.result(t, timeout=30), 144)
        batch = self.client.submit_batch(scaled, [(1,), ((2,), {"factor": 10}), 3])
        self.assertEqual(len(batch.task_ids), 3)
        self.assertEqual(self.client.wait_all(batch.task_ids, timeout=30), [1, 20, 3])
        self.assertEqual(self.client.run(scaled, 4, factor=3), 12)

    def test_a_numpy_array_result_comes_back_with_its_dtype_and_shape(self):
        fn = self.client.register(ramp)
        arr = self.client.run(fn, 2 * MiB, "float64", timeout=60)  # 16 MiB, stored as a .npy object
        self.assertIsInstance(arr, np.ndarray)
        self.assertEqual((arr.dtype, arr.shape), (np.dtype("float64"), (2 * MiB // 256, 256)))
        np.testing.assert_array_equal(arr, np.arange(2 * MiB, dtype=np.float64).reshape(-1, 256))
        small = self.client.run(fn, 1024, "int16")
        self.assertEqual((small.dtype, small.shape), (np.dtype("int16"), (4, 256)))

    def test_a_result_by_reference_is_passed_on_to_the_next_function(self):
        ref = self.client.run(ramp, 4096, "float32", resolve=False)
        self.assertIsInstance(ref, ObjectRef)
        self.assertEqual(ref.content_type, "application/x-npy")
        self.assertEqual(self.client.run(npy_sum, ref), float(np.arange(4096, dtype=np.float32).sum()))

    def test_bytes_results_come_back_as_bytes(self):
        self.assertEqual(self.client.run(raw_bytes, 1024), bytes(range(256)) * 4)

    def test_a_result_over_max_result_bytes_is_refused_and_read_by_range(self):
        small = type(self.client)(max_result_bytes=1000)
        self.addCleanup(small.close)
        task = small.submit(raw_bytes, 1024)
        with self.assertRaises(FerryError) as caught:
            small.result(task, timeout=30)
        self.assertEqual(caught.exception.code, "PAYLOAD_TOO_LARGE")
        ref = small.result(task, resolve=False)
        self.assertEqual((ref.size, ref.content_type), (1024, "application/octet-stream"))
        self.assertEqual(small.get(ref, 256, 4), bytes([0, 1, 2, 3]))

    def test_a_failing_function_raises_task_failed_with_the_remote_traceback(self):
        with self.assertRaises(TaskFailed) as caught:
            self.client.run(fails, 3)
        err = caught.exception
        self.assertEqual(err.code, "FERRY_FUNCTION_ERROR")
        self.assertEqual(err.name, "ValueError")
        self.assertIn("x must not be positive, got 3", err.remote_message)
        self.assertIn("raise ValueError", str(err))

    def test_bad_requests_raise_ferry_errors_with_their_code(self):
        with self.assertRaises(FerryError) as caught:
            self.client.submit(square, 1, endpoint="00000000-0000-4000-8000-000000000000")
        self.assertEqual((caught.exception.code, caught.exception.status), ("NOT_FOUND", 404))
        with self.assertRaises(FerryError) as caught:
            self.client.submit(square, 1, endpoint="not-a-uuid")
        self.assertEqual(caught.exception.status // 100, 4)
        self.assertIn(caught.exception.code, ("VALIDATION_ERROR", "INVALID_ID", "NOT_FOUND"))
        with self.assertRaises(FerryError) as caught:
            self.client.submit(square, float("nan"))
        self.assertEqual((caught.exception.code, caught.exception.status), ("VALIDATION_ERROR", 0))
        with self.assertRaises(FerryError) as caught:
            self.client.submit(square, np.zeros(3))
        self.assertIn("client.put", caught.exception.message)

    def test_the_event_stream_of_tasks(self):
        batch = self.client.submit_batch(square, [5, 6])
        ended = {}
        stream = self.client.events(task_ids=batch.task_ids)
        for kind, doc, event_id in stream:
            self.assertIsInstance(event_id, str)
            if kind == "task" and doc["status"] == "success":
                ended[doc["task_id"]] = doc["result"]
                if len(ended) == 2:
                    stream.stop()
        self.assertEqual([ended[t] for t in batch.task_ids], [25, 36])
        with self.assertRaises(FerryError) as caught:
            self.client.events(task_ids=batch.task_ids, endpoint_id=self.client.endpoint)
        self.assertEqual((caught.exception.code, caught.exception.status), ("VALIDATION_ERROR", 0))
        # A refusal of the gateway ends the iteration with its code (no reconnecting to a 4xx).
        with self.assertRaises(FerryError) as caught:
            next(iter(self.client.events(task_group_id="not-a-group")))
        self.assertEqual((caught.exception.code, caught.exception.status), ("VALIDATION_ERROR", 400))

    def test_cancel_and_wait_timeout(self):
        # Short: a cancelled task that is already running may hold its worker until it ends.
        t = self.client.submit(sleeps, 1.5)
        with self.assertRaises(WaitTimeout):
            self.client.result(t, timeout=0.3)
        self.assertEqual(self.client.cancel(t)["status"], "cancelled")
        with self.assertRaises(TaskCancelled):
            self.client.result(t, timeout=10)

    def test_executor_maps_2000_inputs_in_order(self):
        started = time.monotonic()
        with self.client.executor(batch_size=500) as pool:
            self.assertIsInstance(pool, cf.Executor)
            results = list(pool.map(square, range(2000), timeout=60))
        elapsed = time.monotonic() - started
        self.assertEqual(results, [x * x for x in range(2000)])
        print(f"\nexecutor: 2,000 Python tasks mapped in {elapsed:.2f} s", file=sys.stderr)

    def test_executor_futures_as_completed_exceptions_and_cancel(self):
        with self.client.executor() as pool:
            fs = [pool.submit(scaled, i, factor=2) for i in range(20)]
            bad = pool.submit(fails, 1)
            slow = pool.submit(sleeps, 1.5)
            self.assertEqual(sorted(f.result() for f in cf.as_completed(fs, timeout=30)), [2 * i for i in range(20)])
            self.assertIsInstance(bad.exception(timeout=30), TaskFailed)
            self.assertEqual(bad.exception().code, "FERRY_FUNCTION_ERROR")
            task_id = None
            deadline = time.monotonic() + 10
            while task_id is None and time.monotonic() < deadline:
                task_id = pool.task_id(slow)
                time.sleep(0.01)
            self.assertTrue(slow.cancel())
            self.assertIsNotNone(task_id)
            self.assertEqual(self.client.task(task_id)["status"], "cancelled")

    def test_executor_resumes_its_event_stream_after_a_drop(self):
        import socket

        with self.client.executor() as pool:
            fs = [pool.submit(sleeps, 0.01) for _ in range(200)]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (pool._stream is None or pool._stream._res is None):
                time.sleep(0.005)
            stream = pool._stream
            self.assertIsNotNone(stream)
            # The connection dies under the reader (a proxy's idle cut, a network blip).
            stream._res.raw.fp.raw._sock.shutdown(socket.SHUT_RDWR)
            done, not_done = cf.wait(fs, timeout=60)
            self.assertEqual(not_done, set())
            self.assertEqual([f.result() for f in fs], [0.01] * 200)
        self.assertGreaterEqual(stream.reconnects, 1)

    def test_executor_shutdown_without_waiting_still_settles_its_futures(self):
        pool = self.client.executor()
        fs = [pool.submit(square, i) for i in range(5)]
        pool.shutdown(wait=False)
        with self.assertRaises(RuntimeError):
            pool.submit(square, 1)
        self.assertEqual([f.result(timeout=30) for f in fs], [0, 1, 4, 9, 16])
        self.assertTrue(all(isinstance(f.task_id, str) for f in fs))

    def test_executor_shutdown_cancelling_futures(self):
        pool = self.client.executor(batch_delay=5)  # a partial batch waits for more: these are queued
        fs = [pool.submit(square, i) for i in range(3)]
        pool.shutdown(cancel_futures=True)
        self.assertTrue(all(f.cancelled() for f in fs))
        self.assertEqual(cf.wait(fs, timeout=1).not_done, set())

    def test_put_of_a_file_streams_it_in_bounded_memory(self):
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            block = os.urandom(MiB)
            digest = hashlib.sha256()
            for i in range(64):
                chunk = bytes([i]) + block[1:]
                f.write(chunk)
                digest.update(chunk)
            f.flush()
            # In a fresh interpreter, so its peak RSS is this upload's alone.
            script = (
                "import resource, sys, json; sys.path.insert(0, sys.argv[2]); from ferry import Client\n"
                "c = Client(); base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
                "ref = c.put(sys.argv[1])\n"
                "print(json.dumps({'sha256': ref.sha256, 'size': ref.size, 'grew_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base}))\n"
            )
            out = subprocess.run([sys.executable, "-c", script, f.name, os.path.dirname(HERE)], capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            import json

            seen = json.loads(out.stdout)
        self.assertEqual((seen["size"], seen["sha256"]), (64 * MiB, digest.hexdigest()))
        # One 16 MiB part in memory at a time (measured: 16.25 MiB of growth), not the 64 MiB file, nor two parts.
        self.assertLess(seen["grew_kib"] * 1024, 24 * MiB, seen)


def npy_sum(ref):
    import io

    import numpy as np

    return float(np.load(io.BytesIO(ref.bytes())).sum())


if __name__ == "__main__":
    unittest.main()
