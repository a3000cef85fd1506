// Clients holding a `?wait=` or `/v3/run` answer, by task id. The hub wakes them when it stores a
// result or a cancel: waiting costs no polling, only a timer for the deadline.

export class TaskWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();

  /** Resolves when the task is woken or after `ms`, whichever comes first. */
  wait(taskId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(taskId);
      if (!set) {
        set = new Set();
        this.waiting.set(taskId, set);
      }
      const waiters = set;
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(taskId) === waiters) this.waiting.delete(taskId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
    });
  }

  wake(taskIds: Iterable<string>): void {
    if (this.waiting.size === 0) return;
    for (const taskId of taskIds) {
      const set = this.waiting.get(taskId);
      if (set) for (const done of [...set]) done();
    }
  }

  /** Wakes every waiter (the gateway is shutting down). */
  wakeAll(): void {
    for (const set of [...this.waiting.values()]) for (const done of [...set]) done();
  }
}
