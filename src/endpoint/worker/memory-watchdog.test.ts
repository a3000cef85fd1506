import { expect, it, vi } from 'vitest';
import { fallsUnder, watchResidentMemory } from './memory-watchdog';

it('calls onOver once, from the sampler, for the first sample past the limit, and then stops sampling', async () => {
  let rss = 100;
  let samples = 0;
  const onOver = vi.fn();
  const watch = watchResidentMemory(() => (samples++, rss), () => 150, onOver, 1);
  await vi.waitFor(() => expect(samples).toBeGreaterThan(2));
  expect(onOver).not.toHaveBeenCalled();
  rss = 200;
  await vi.waitFor(() => expect(onOver).toHaveBeenCalledWith(200, 150));
  const after = samples;
  expect(watch.checkNow()).toBe(true);
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(samples).toBe(after);
  expect(onOver).toHaveBeenCalledTimes(1);
  watch.stop();
});

it('checkNow sees what was allocated since the last sample, before the timer does', () => {
  let rss = 100;
  const onOver = vi.fn();
  const watch = watchResidentMemory(() => rss, () => 150, onOver, 60_000);
  expect(watch.checkNow()).toBe(false);
  rss = 151;
  expect(watch.checkNow()).toBe(true);
  expect(onOver).toHaveBeenCalledExactlyOnceWith(151, 150);
  watch.stop();
});

it('fallsUnder resolves true once the memory is back under the limit, false if it stays over', async () => {
  let rss = 200;
  setTimeout(() => (rss = 100), 30);
  expect(await fallsUnder(() => rss, () => 150, 5_000, 5)).toBe(true);
  expect(await fallsUnder(() => 200, () => 150, 30, 5)).toBe(false);
});
