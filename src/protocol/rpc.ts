/**
 * The request/response envelope every framed link uses (peer ↔ server, peer ↔ peer):
 *   req    {t, id, op, body}                 a request
 *   res    {t, id, body} | {t, id, error}    its answer (error: {code, message, retryAfterMs?})
 *   ev     {t, ev, body}                     a push
 *   ping / pong {t}                          heartbeats
 *   error  {t, code, message}               fatal: the sender closes after it
 * A link defines its operations (access rule, request and answer schemas) and events with `op()`.
 */
import { z } from 'zod';

export const WireError = z.object({
  code: z.string().max(64),
  message: z.string().max(1000),
  /** How long to wait before trying again (E_RATE_LIMITED), in milliseconds. */
  retryAfterMs: z.number().int().min(0).max(0x7fffffff).optional(),
});
export const Request = z.object({
  t: z.literal('req'),
  id: z.number().int().min(0).max(0xffffffff),
  op: z.string().max(64),
  /** PROTOCOL.md §3.1: a missing body is `{}` (each operation's schema then reads it). */
  body: z.unknown().default(() => ({})),
});
export const Response = z.object({
  t: z.literal('res'),
  id: z.number().int(),
  body: z.unknown().optional(),
  error: WireError.optional(),
});
export const Event = z.object({ t: z.literal('ev'), ev: z.string(), body: z.unknown() });
export const Fatal = z.object({ t: z.literal('error'), code: z.string(), message: z.string() });

/** Who may call an operation: anyone, any logged-in session, or registered users only. */
export type Access = 'anyone' | 'session' | 'user';

/** One operation of a link. */
export interface OpSpec<Req extends z.ZodType = z.ZodType, Res extends z.ZodType = z.ZodType> {
  access: Access;
  req: Req;
  res: Res;
}

/** Declares an operation. */
export function op<Req extends z.ZodType, Res extends z.ZodType>(
  access: Access,
  req: Req,
  res: Res,
): OpSpec<Req, Res> {
  return { access, req, res };
}

/** A link's operations and events. */
export type OpTable = Record<string, OpSpec>;
export type EventTable = Record<string, z.ZodType>;

/**
 * Formats a zod failure as one line naming the fields that were wrong. A message that already
 * names its field (`password: at least 6 characters`) is not prefixed with it a second time.
 */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => {
      const field = i.path.map(String);
      if (!field.length) return i.message;
      // `a.password` + `password: …` reads `a.password: …`.
      if (i.message.startsWith(`${field[field.length - 1]}: `))
        return [...field.slice(0, -1), i.message].join('.');
      return `${field.join('.')}: ${i.message}`;
    })
    .join('; ');
}
