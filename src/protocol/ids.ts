// Id formats. A task id and a task group id start with their endpoint's id, so any route can find
// the Durable Object that owns a task from the id alone.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SUFFIX = /^[0-9a-z]{16,32}$/;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** `<endpoint_id>.<suffix>`; `suffix` is lower-case base-36, 16 to 32 characters. */
export function composeTaskId(endpointId: string, suffix: string): string {
  return `${endpointId}.${suffix}`;
}

/** The endpoint id inside a task id or a task group id, or `null` when the id is malformed. */
export function endpointOfId(id: string): string | null {
  const dot = id.indexOf('.');
  if (dot !== 36) return null;
  const endpointId = id.slice(0, 36);
  const suffix = id.slice(37);
  if (!isUuid(endpointId) || !SUFFIX.test(suffix)) return null;
  return endpointId;
}
