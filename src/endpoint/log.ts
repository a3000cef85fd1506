// Structured logs (pino): one JSON object per line on stderr, quiet by default. FERRY_LOG=debug|info|warn|error
// sets the level (default: info, which prints only lifecycle events and problems). A line is
// `{"level","t",…bindings,"msg",…fields}`: the message goes in with the fields, so it comes before them.

import { pino, type Logger as Pino } from 'pino';

type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

function envLevel(): Level {
  const v = process.env.FERRY_LOG;
  return v === 'debug' || v === 'info' || v === 'warn' || v === 'error' ? v : 'info';
}

function wrap(p: Pino): Logger {
  // The level is fixed when the logger is made: a level below it costs one empty call.
  const at = (level: Level) => (p.isLevelEnabled(level) ? (msg: string, fields?: Record<string, unknown>) => p[level]({ msg, ...fields }) : () => undefined);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (fields) => wrap(p.child(fields)) };
}

export function createLogger(base: Record<string, unknown> = {}, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const p = pino(
    {
      level: envLevel(),
      base,
      messageKey: 'msg',
      timestamp: () => `,"t":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    { write },
  );
  return wrap(p);
}
