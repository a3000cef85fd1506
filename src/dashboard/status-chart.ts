// The endpoint's last hour as a small SVG chart: busy workers and outstanding tasks over time,
// from the hub's status samples. A gap longer than a few sampling intervals breaks the lines (no
// report came: the agent was offline).

import type { StatusSample } from '../protocol/task-list';
import { s } from './dom';

const W = 480;
const H = 120;
const PAD = { left: 34, right: 8, top: 8, bottom: 20 };

export function statusChart(samples: readonly StatusSample[], windowS: number, sampleEveryS: number, now: number): SVGSVGElement {
  const busy = samples.map((x) => ({ t: x.t, v: Math.max(0, x.total_workers - x.idle_workers) }));
  const outstanding = samples.map((x) => ({ t: x.t, v: x.outstanding_tasks }));
  const peak = Math.max(1, ...busy.map((p) => p.v), ...outstanding.map((p) => p.v));
  const x = (t: number) => PAD.left + ((t - (now - windowS)) / windowS) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / peak) * (H - PAD.top - PAD.bottom);
  const paths = (points: ReadonlyArray<{ t: number; v: number }>) => {
    let d = '';
    points.forEach((p, i) => {
      const gap = i === 0 || p.t - points[i - 1]!.t > 3 * sampleEveryS;
      // A lone sample after a gap still shows: a zero-length segment drawn with a round cap.
      d += `${gap ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}${gap ? 'h0.01' : ''}`;
    });
    return d;
  };
  const peakBusy = Math.max(0, ...busy.map((p) => p.v));
  const peakOutstanding = Math.max(0, ...outstanding.map((p) => p.v));
  const label = samples.length === 0
    ? 'Last hour: no status reports'
    : `Last hour: ${samples.length} reports; busy workers peaked at ${peakBusy}, outstanding tasks at ${peakOutstanding}`;
  return s(
    'svg',
    { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label },
    s('title', {}, label),
    s('line', { class: 'axis', x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom }),
    s('line', { class: 'axis', x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom }),
    s('text', { class: 'tick', x: PAD.left - 4, y: PAD.top + 8, 'text-anchor': 'end' }, peak),
    s('text', { class: 'tick', x: PAD.left - 4, y: H - PAD.bottom, 'text-anchor': 'end' }, 0),
    s('text', { class: 'tick', x: PAD.left, y: H - 4 }, '−60 min'),
    s('text', { class: 'tick', x: (PAD.left + W - PAD.right) / 2, y: H - 4, 'text-anchor': 'middle' }, '−30 min'),
    s('text', { class: 'tick', x: W - PAD.right, y: H - 4, 'text-anchor': 'end' }, 'now'),
    s('path', { class: 'line-outstanding', d: paths(outstanding) }),
    s('path', { class: 'line-busy', d: paths(busy) }),
  );
}
