// A watchdog on the worker process's resident memory while a task runs. isolated-vm bounds an
// isolate's heap and its ArrayBuffers, but memory allocated past its ArrayBuffer allocator
// (WebAssembly.Memory, above all) counts against nothing: only the process's RSS shows it. The
// sampler runs only while a task does, so an idle worker and a short task pay nothing for it.

/** Slack above the memory the isolates may legitimately hold: V8's own structures, code, malloc. */
export const RSS_MARGIN_BYTES = 64 * 1024 * 1024;
/**
 * Between samples; one sample reads /proc/self/stat (microseconds). A function touching fresh pages
 * gains 1-2 GiB/s, so at 50 ms it ran 20-40 MiB past its limit before a sample saw it on a quiet
 * box; at 10 ms a few MiB.
 */
export const RSS_SAMPLE_MS = 10;

const MIB = 1024 * 1024;

export function mib(bytes: number): number {
  return Math.round(bytes / MIB);
}

export interface ResidentMemoryWatch {
  /** Stops sampling. */
  stop(): void;
  /**
   * Samples once, now (as the task ends: what a function allocated after the last sample must not
   * stay in a warm isolate because the timer was late); true if this or an earlier sample was over.
   */
  checkNow(): boolean;
}

/**
 * Samples `rss()` every `intervalMs` until stopped; the first sample past `limit()` (read each
 * time: the isolates held may change) calls `onOver` once and stops.
 */
export function watchResidentMemory(
  rss: () => number,
  limit: () => number,
  onOver: (rssBytes: number, limitBytes: number) => void,
  intervalMs = RSS_SAMPLE_MS,
): ResidentMemoryWatch {
  let over = false;
  const sample = () => {
    if (over) return;
    const now = rss();
    const max = limit();
    if (now <= max) return;
    over = true;
    clearInterval(timer);
    onOver(now, max);
  };
  const timer = setInterval(sample, intervalMs);
  return {
    stop: () => clearInterval(timer),
    checkNow: () => {
      sample();
      return over;
    },
  };
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
