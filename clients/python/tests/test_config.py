"""Where Client() finds the gateway and the token: arguments, FERRY_URL / FERRY_TOKEN, then
$FERRY_HOME/user.json, as the CLI does (src/cli/user-config.ts)."""

import json
import os
import tempfile
import unittest
from pathlib import Path

from ferry import FerryError
from ferry._config import resolve_access


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.home = tempfile.TemporaryDirectory()
        self.addCleanup(self.home.cleanup)
        self.env = {"FERRY_HOME": self.home.name}

    def write(self, name, data):
        Path(self.home.name, name).write_text(data if isinstance(data, str) else json.dumps(data))

    def test_user_json_as_ferry_login_writes_it(self):
        self.write("user.json", {"gateway_url": "https://ferry.example/", "token": "t-file"})
        self.assertEqual(resolve_access(None, None, self.env), ("https://ferry.example", "t-file"))

    def test_environment_before_the_file_each_setting_on_its_own(self):
        self.write("user.json", {"gateway_url": "https://ferry.example", "token": "t-file"})
        env = {**self.env, "FERRY_TOKEN": "t-env"}
        self.assertEqual(resolve_access(None, None, env), ("https://ferry.example", "t-env"))
        self.assertEqual(resolve_access("http://other:1", None, env), ("http://other:1", "t-env"))

    def test_dev_json_when_there_is_no_login(self):
        self.write("dev.json", {"gateway_url": "http://127.0.0.1:8787", "token": "t-dev", "endpoint_id": "x"})
        self.assertEqual(resolve_access(None, None, self.env), ("http://127.0.0.1:8787", "t-dev"))

    def test_nothing_configured_names_the_ways(self):
        with self.assertRaises(FerryError) as caught:
            resolve_access(None, None, self.env)
        self.assertEqual(caught.exception.code, "CONFIG_INVALID")
        self.assertIn("FERRY_URL", caught.exception.message)
        self.assertIn("ferry login", caught.exception.message)

    def test_a_broken_file_is_config_invalid_naming_it(self):
        self.write("user.json", "{not json")
        with self.assertRaises(FerryError) as caught:
            resolve_access(None, None, self.env)
        self.assertEqual(caught.exception.code, "CONFIG_INVALID")
        self.assertIn("user.json", caught.exception.message)
        self.write("user.json", {"gateway_url": "https://x", "token": 5})
        with self.assertRaises(FerryError):
            resolve_access(None, None, self.env)

    def test_client_reads_the_environment(self):
        from ferry import Client

        saved = {k: os.environ.get(k) for k in ("FERRY_URL", "FERRY_TOKEN", "FERRY_HOME", "FERRY_ENDPOINT")}
        try:
            os.environ.update({"FERRY_URL": "http://127.0.0.1:9/", "FERRY_TOKEN": "t", "FERRY_HOME": self.home.name, "FERRY_ENDPOINT": "ep"})
            c = Client()
            self.assertEqual((c.url, c.endpoint), ("http://127.0.0.1:9", "ep"))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


if __name__ == "__main__":
    unittest.main()
