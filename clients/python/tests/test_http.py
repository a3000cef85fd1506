"""The transport against a real HTTP server on loopback standing in for a gateway under load: 429 and
503 retried after Retry-After (bounded), error bodies decoded into FerryError codes, answers
refused over their size and depth bounds."""

import http.server
import json
import threading
import unittest

from ferry import Client, FerryError
from ferry._http import MAX_JSON_DEPTH, decode_json, nests_deeper_than


class Gateway(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next scripted (status, headers, body) of its path."""

    protocol_version = "HTTP/1.1"
    script: dict = {}
    seen: list = []

    def log_message(self, *args):
        pass

    def answer(self):
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        self.seen.append((self.command, self.path))
        queue = self.script.get(self.path) or [(404, {}, b'{"code":"NOT_FOUND","message":"Not found"}')]
        status, headers, body = queue.pop(0) if len(queue) > 1 else queue[0]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = answer


class TransportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.url = f"http://127.0.0.1:{cls.server.server_address[1]}"

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def setUp(self):
        Gateway.script = {}
        Gateway.seen = []

    def test_429_and_503_are_retried_after_retry_after(self):
        limited = (429, {"Retry-After": "0"}, b'{"code":"RATE_LIMITED","message":"Too many requests"}')
        draining = (503, {"Retry-After": "0"}, b'{"code":"UNAVAILABLE","message":"the gateway is shutting down"}')
        Gateway.script["/v2/functions/f"] = [limited, draining, (200, {}, b'{"function_uuid":"f"}')]
        client = Client(url=self.url, token="t")
        self.assertEqual(client.get_function("f"), {"function_uuid": "f"})
        self.assertEqual(client.retries, 2)
        self.assertEqual(len(Gateway.seen), 3)

    def test_retries_are_bounded(self):
        Gateway.script["/v2/functions/f"] = [(429, {"Retry-After": "0"}, b'{"code":"RATE_LIMITED","message":"Too many requests"}')]
        client = Client(url=self.url, token="t", max_retries=3)
        with self.assertRaises(FerryError) as caught:
            client.get_function("f")
        self.assertEqual((caught.exception.code, caught.exception.status), ("RATE_LIMITED", 429))
        self.assertEqual(len(Gateway.seen), 4)

    def test_a_503_without_retry_after_is_not_retried(self):
        Gateway.script["/v2/functions/f"] = [(503, {}, b'{"code":"UNAVAILABLE","message":"down"}')]
        with self.assertRaises(FerryError) as caught:
            Client(url=self.url, token="t").get_function("f")
        self.assertEqual(caught.exception.code, "UNAVAILABLE")
        self.assertEqual(len(Gateway.seen), 1)

    def test_error_bodies_become_ferry_errors_with_their_code(self):
        body = json.dumps({"code": "VALIDATION_ERROR", "message": "tasks: required", "details": {"issues": []}}).encode()
        Gateway.script["/v2/functions/f"] = [(400, {}, body)]
        with self.assertRaises(FerryError) as caught:
            Client(url=self.url, token="t").get_function("f")
        self.assertEqual((caught.exception.code, caught.exception.status, caught.exception.details), ("VALIDATION_ERROR", 400, {"issues": []}))
        Gateway.script["/v2/functions/g"] = [(502, {}, b"<html>bad gateway</html>")]
        with self.assertRaises(FerryError) as caught:
            Client(url=self.url, token="t").get_function("g")
        self.assertEqual(caught.exception.code, "HTTP_502")

    def test_a_deep_answer_is_refused_before_it_is_parsed(self):
        Gateway.script["/v2/functions/f"] = [(200, {}, b"[" * 100_000 + b"]" * 100_000)]
        with self.assertRaises(FerryError) as caught:
            Client(url=self.url, token="t").get_function("f")
        self.assertEqual(caught.exception.code, "INVALID_JSON")

    def test_an_unreachable_gateway_is_unavailable_naming_it(self):
        with self.assertRaises(FerryError) as caught:
            Client(url="http://127.0.0.1:9", token="t").get_function("f")
        self.assertEqual((caught.exception.code, caught.exception.status), ("UNAVAILABLE", 0))
        self.assertIn("127.0.0.1:9", caught.exception.message)


class DecodeTest(unittest.TestCase):
    def test_depth_counts_brackets_outside_strings(self):
        self.assertFalse(nests_deeper_than('["' + "[" * 5000 + '"]', 10))
        self.assertTrue(nests_deeper_than("[" * 11 + "]" * 11, 10))
        self.assertFalse(nests_deeper_than("[" * 10 + "]" * 10, 10))
        self.assertEqual(decode_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, "t") is not None, True)

    def test_size_bound(self):
        with self.assertRaises(FerryError) as caught:
            decode_json(b'"' + b"x" * 100 + b'"', "answer", max_bytes=50)
        self.assertEqual(caught.exception.code, "PAYLOAD_TOO_LARGE")


if __name__ == "__main__":
    unittest.main()
