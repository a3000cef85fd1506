"""The live stack these tests run against: test/e2e/python-client.test.ts starts a gateway and an
endpoint with Python enabled and sets FERRY_URL, FERRY_TOKEN and FERRY_ENDPOINT."""

import os

from ferry import Client

NEEDED = ("FERRY_URL", "FERRY_TOKEN", "FERRY_ENDPOINT")


def live_client() -> Client:
    missing = [k for k in NEEDED if not os.environ.get(k)]
    if missing:
        raise RuntimeError(
            f"these tests need a running gateway and endpoint ({', '.join(missing)} unset): run them through "
            "`npx vitest run --config vitest.node.config.ts test/e2e/python-client.test.ts`, or set FERRY_URL, "
            "FERRY_TOKEN and FERRY_ENDPOINT to a stack whose endpoint enables Python"
        )
    return Client()
