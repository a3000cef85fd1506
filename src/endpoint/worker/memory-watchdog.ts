// A watchdog on the worker process's resident memory while a task runs. isolated-vm bounds an
// isolate's heap and its ArrayBuffers, but memory allocated past its ArrayBuffer allocator
// (WebAssembly.Memory, above all) counts against nothing: only the process's RSS shows it. The
// sampler runs only while a task does, so an idle worker and a short task pay nothing for it.

/** Slack above the memory the isolates may legitimately hold: V8's own structures, code, malloc. */
export const RSS_MARGIN_BYTES = 64 * 1024 * 1024;
/** Between samples; one sample reads /proc/self/statm. */
export const RSS_SAMPLE_MS = 50;

const MIB = 1024 * 1024;

export function mib(bytes: number): number {
  return Math.round(bytes / MIB);
}

/**
 * Samples `rss()` every `intervalMs` until the returned function is called; the first sample past
 * `limit()` (read each time: the isolates held may change) calls `onOver` once and stops.
 */
export function watchResidentMemory(
  rss: () => number,
  limit: () => number,
  onOver: (rssBytes: number, limitBytes: number) => void,
  intervalMs = RSS_SAMPLE_MS,
): () => void {
  const timer = setInterval(() => {
    const now = rss();
    const max = limit();
    if (now <= max) return;
    clearInterval(timer);
    onOver(now, max);
  }, intervalMs);
  return () => clearInterval(timer);
}

/** Resolves true once `rss()` is at or under `limit()`, false if it is still above after `withinMs`. */
export async function fallsUnder(rss: () => number, limit: () => number, withinMs: number, intervalMs = 10): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (rss() <= limit()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
