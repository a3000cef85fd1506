// The gateway's structured log: one JSON object per line on the Workers console (workerd's output
// locally, Workers Logs when deployed). Quiet by default: only what an operator should act on.

type Level = 'warn' | 'error';

export function logEvent(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ time: new Date().toISOString(), level, component: 'gateway', msg, ...fields });
  if (level === 'error') console.error(line);
  else console.warn(line);
}
