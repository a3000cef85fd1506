// A task's life as an SVG timeline: a mark per state change, and a bar per attempt (where and how
// long it ran, how it ended), on one time axis.

import type { AttemptRecord } from '../provenance/prov-document';
import { s } from './dom';

const W = 640;
const ROW = 22;
const PAD = { left: 120, right: 16, top: 8 };

export function timeline(transitions: Record<string, number>, attempts: readonly AttemptRecord[], now: number): SVGSVGElement {
  const marks = Object.entries(transitions).sort((a, b) => a[1] - b[1]);
  const times = [...marks.map(([, t]) => t), ...attempts.flatMap((a) => [a.started_at, a.ended_at].filter((t): t is number => t !== undefined))];
  const start = Math.min(...times, now);
  const end = Math.max(...times, start + 0.001);
  const x = (t: number) => PAD.left + ((t - start) / (end - start)) * (W - PAD.left - PAD.right);
  const height = PAD.top + ROW * (marks.length + attempts.length) + 24;
  const span = end - start;
  const label = `Timeline over ${span < 1 ? `${Math.round(span * 1000)} ms` : `${span.toFixed(1)} s`}: ${marks.map(([state]) => state).join(', then ')}; ${attempts.length} attempt(s)`;
  const rows: SVGElement[] = [];
  marks.forEach(([state, t], i) => {
    const y = PAD.top + i * ROW + ROW / 2;
    rows.push(
      s('text', { class: 'tick', x: PAD.left - 8, y: y + 4, 'text-anchor': 'end' }, state),
      s('circle', { class: `mark status-${state.replace(/[^a-z-]/g, '')}`, cx: x(t), cy: y, r: 5 }, s('title', {}, `${state} at ${new Date(t * 1000).toISOString()}`)),
    );
  });
  attempts.forEach((a, i) => {
    const y = PAD.top + (marks.length + i) * ROW + 4;
    const from = a.started_at ?? start;
    const to = a.ended_at ?? end;
    rows.push(
      s('text', { class: 'tick', x: PAD.left - 8, y: y + 12, 'text-anchor': 'end' }, `attempt ${a.attempt}`),
      s('rect', { class: `attempt outcome-${a.outcome.replace(/[^a-z-]/g, '')}`, x: x(from), y, width: Math.max(2, x(to) - x(from)), height: ROW - 8 }, s('title', {}, `attempt ${a.attempt}: ${a.outcome}${a.host ? ` on ${a.host}` : ''}${a.reason ? ` (${a.reason})` : ''}`)),
    );
  });
  return s(
    'svg',
    { class: 'timeline', viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': label },
    s('title', {}, label),
    ...rows,
    s('line', { class: 'axis', x1: PAD.left, y1: height - 20, x2: W - PAD.right, y2: height - 20 }),
    s('text', { class: 'tick', x: PAD.left, y: height - 6 }, '0'),
    s('text', { class: 'tick', x: W - PAD.right, y: height - 6, 'text-anchor': 'end' }, span < 1 ? `${Math.round(span * 1000)} ms` : `${span.toFixed(2)} s`),
  );
}
