// What a view gets: the API, the element it draws into, the route's parts, a way to say something
// to screen readers, and a signal that aborts when the reader leaves the view (timers, streams).

import type { Api } from './api';

export interface ViewContext {
  api: Api;
  root: HTMLElement;
  /** The route's path segments after the view name (`#/task/<id>` → [id]). */
  args: string[];
  query: URLSearchParams;
  /** Says something through the page's live region. */
  announce(message: string): void;
  /** Aborts when another view replaces this one. */
  signal: AbortSignal;
}

export type View = (ctx: ViewContext) => Promise<void> | void;

/** Calls `tick` now and every `ms` until the view goes away; a failed tick is announced, not fatal. */
export function every(ctx: ViewContext, ms: number, tick: () => Promise<void>): void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = async () => {
    try {
      await tick();
    } catch (err) {
      if (!ctx.signal.aborted) ctx.announce(`Refresh failed: ${(err as Error).message}`);
    }
    if (!ctx.signal.aborted) timer = setTimeout(run, ms);
  };
  ctx.signal.addEventListener('abort', () => clearTimeout(timer));
  void run();
}
