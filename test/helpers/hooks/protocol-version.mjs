// Makes a real agent speak another protocol version, for the refusal test: loaded with
// `node --import` (NODE_OPTIONS), it rewrites PROTOCOL_VERSION in src/protocol/wire.ts as the
// module loads, to FERRY_TEST_PROTOCOL_VERSION. Nothing in the product reads that variable.
import { register } from 'node:module';

register('./protocol-version-loader.mjs', import.meta.url, { data: { version: process.env.FERRY_TEST_PROTOCOL_VERSION } });
