/** Validation of what the local API reads: a bad request names what was wrong. */
import type { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { describeIssues } from '../protocol/server-link.js';

/** `value` as `schema` reads it, or E_BAD_REQUEST naming `what` and every problem. */
export function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new HchatError('E_BAD_REQUEST', `${what}: ${describeIssues(r.error)}`);
  return r.data;
}
