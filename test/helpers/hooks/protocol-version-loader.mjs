// Module loader hook (see protocol-version.mjs): substitutes the protocol version constant.
let version;

export function initialize(data) {
  version = Number(data?.version);
  if (!Number.isInteger(version)) throw new Error('FERRY_TEST_PROTOCOL_VERSION must be an integer');
}

export async function load(url, context, nextLoad) {
  const loaded = await nextLoad(url, context);
  if (!url.endsWith('/src/protocol/wire.ts') || loaded.source == null) return loaded;
  const source = String(loaded.source);
  const rewritten = source.replace(/PROTOCOL_VERSION\s*=\s*\d+/, `PROTOCOL_VERSION = ${version}`);
  if (rewritten === source) throw new Error('protocol-version hook: PROTOCOL_VERSION not found in wire.ts');
  return { ...loaded, source: rewritten };
}
