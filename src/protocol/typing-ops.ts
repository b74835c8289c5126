/**
 * Typing indicators (issue 13 item 5; docs/PROTOCOL.md §3.3, §3.5, §4.2): a member's peer tells
 * the channel's current source (the host over P2P while it is up, the server otherwise) that its
 * user is typing; that replica pushes `typing` to the channel's other subscribers. Nothing of it
 * is stored anywhere. Answered alike by the server and by the host, as the channel operations.
 */
import { z } from 'zod';
import { Username, Uuid } from './common.js';
import { op } from './rpc.js';

/** The operation a member calls on the server and on a host. */
export const TYPING_OPS = {
  /**
   * The session's user is typing in this channel. Always answered `{}` once the rights hold: a
   * repeat within the interval, or an invisible sender, is dropped quietly (nothing revealed).
   */
  typing: op('user', z.object({ channelId: Uuid }), z.object({})),
} as const;

/** `typing` push: `username` is typing in `channelId` until `expiresAt` (the pusher's clock). */
export const TypingEvent = z.object({
  channelId: Uuid,
  username: Username,
  expiresAt: z.number().int().min(0),
});
export type TypingEvent = z.infer<typeof TypingEvent>;

/** The push, on both links. */
export const TYPING_EVENTS = { typing: TypingEvent } as const;
