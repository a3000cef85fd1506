// A Durable Object has one alarm; the hub has several timed duties (writing lineage records of ended
// tasks, sweeping the outbox with a remote store). The scheduler keeps when each duty is due next
// and sets the alarm to the earliest. What it knows goes with the instance: after a wake, a duty
// whose due time is unknown runs at the next alarm (each duty is cheap when it has nothing to do).

/** The part of DurableObjectStorage the scheduler uses. */
export interface AlarmStorage {
  getAlarm(): Promise<number | null>;
  setAlarm(scheduledTime: number): Promise<void>;
}

export class AlarmScheduler<Duty extends string> {
  /** When each duty is due (ms since the epoch), as far as this instance knows. */
  private readonly due = new Map<Duty, number>();

  /** `duties`: each duty's work at an alarm, run in this order; a duty schedules itself again when it needs to. */
  constructor(
    private readonly storage: AlarmStorage,
    private readonly duties: ReadonlyArray<readonly [Duty, () => Promise<void>]>,
  ) {}

  /**
   * Makes `duty` due at `at` (ms), unless it is due later than now already (kept: no storage read on
   * a hot path), or the alarm is set sooner (the duty then runs then).
   */
  async schedule(duty: Duty, at: number): Promise<void> {
    if ((this.due.get(duty) ?? 0) > Date.now()) return;
    const current = await this.storage.getAlarm();
    if (current !== null && current <= at) {
      this.due.set(duty, current);
      return;
    }
    await this.storage.setAlarm(at);
    this.due.set(duty, at);
  }

  /** When `duty` is due as far as this instance knows (ms), or null. */
  dueAt(duty: Duty): number | null {
    return this.due.get(duty) ?? null;
  }

  /**
   * The alarm fired: runs the duties it was set for (the earliest due, even if it fires early),
   * those due by now and those whose due time is not known, each forgotten before it runs, then sets
   * the alarm again for the duties due later. A duty that throws stops the rest: the runtime retries
   * the alarm.
   */
  async fire(): Promise<void> {
    let by = Date.now();
    let earliest = Infinity;
    for (const at of this.due.values()) earliest = Math.min(earliest, at);
    if (earliest !== Infinity) by = Math.max(by, earliest);
    const run: Array<() => Promise<void>> = [];
    for (const [duty, work] of this.duties) {
      const due = this.due.get(duty);
      if (due !== undefined && due > by) continue;
      this.due.delete(duty);
      run.push(work);
    }
    for (const work of run) await work();
    let next = Infinity;
    for (const at of this.due.values()) next = Math.min(next, at);
    if (next === Infinity) return;
    const current = await this.storage.getAlarm();
    if (current === null || current > next) await this.storage.setAlarm(next);
  }
}
