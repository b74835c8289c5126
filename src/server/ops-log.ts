/**
 * The server's operational log (SPEC §11): JSON lines on stderr for operators and their log
 * shippers — start, shutdown, internal errors, store and bus failures. It is not the spec's
 * connection log (shared/connlog.ts), which records what peers did. stdout stays for the ready
 * line that scripts and tests read.
 *
 * Never log a secret (token, password, key) or a message's contents: log codes, names, counts.
 */
import { pino, type Logger } from 'pino';

/** Levels `--log-level` accepts (pino's), `silent` included. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A logger writing JSON lines to stderr at `level`. */
export function createOpsLog(level: LogLevel = 'info'): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid, svc: 'hchat-server' },
      // Defence in depth: should a field of these names ever be logged, its value is not.
      redact: {
        paths: ['password', 'token', 'key', 'secret', '*.password', '*.token', '*.key', '*.secret'],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that drops everything (in-process servers: tests, the demo). */
export function silentLog(): Logger {
  return pino({ level: 'silent' });
}
