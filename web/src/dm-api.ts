/**
 * Direct messages through the local API (issue 15; README "Direct messages"), and their live
 * events (`dm`, `dm_state`, `dms`), handed from the one EventSource (useLiveEvents.ts) to the DM
 * views.
 */
import { useEffect, useRef } from 'react';
import { call, type Answer } from './api.js';
import type { components } from './local-api-types.js';

/** A conversation, one of its messages or notices, and its safety numbers (the API's document). */
export type ApiDm = components['schemas']['Dm'];
export type ApiDmMessage = components['schemas']['DmMessage'];
export type ApiSafety = components['schemas']['Safety'];

/** Messages asked for per page. */
export const DM_PAGE = 50;

const enc = encodeURIComponent;

export const dmApi = {
  /** Every conversation, newest activity first. */
  list: () => call<ApiDm[]>('GET', '/api/dms'),
  /** Starts a conversation with these OTHER users (1–9), or opens the 1:1 one that exists. */
  start: (members: string[]) => call<ApiDm>('POST', '/api/dms', { members }),
  get: (id: string) => call<ApiDm>('GET', `/api/dms/${enc(id)}`),
  /** A page, oldest → newest: the newest ones, or those before `before`. */
  messages: (id: string, before?: string) =>
    call<Answer<'/api/dms/{id}/messages'>>(
      'GET',
      `/api/dms/${enc(id)}/messages?limit=${DM_PAGE}${before ? `&before=${enc(before)}` : ''}`,
    ),
  /** Writes a message; `replyTo`: the id of the conversation's message it answers. */
  post: (id: string, text: string, replyTo?: string) =>
    call<Answer<'/api/dms/{id}/messages', 'post', 201>>('POST', `/api/dms/${enc(id)}/messages`, {
      text,
      ...(replyTo ? { replyTo } : {}),
    }),
  /** Adds (`on`) or takes back one's reaction (the `dm` event brings the message with it). */
  react: (id: string, messageId: string, emoji: string, on: boolean) =>
    call<Answer<'/api/dms/{id}/messages/{messageId}/reactions/{emoji}', 'put'>>(
      on ? 'PUT' : 'DELETE',
      `/api/dms/${enc(id)}/messages/${enc(messageId)}/reactions/${enc(emoji)}`,
    ),
  /** Edits one's own message (the `dm` event brings it edited). */
  edit: (id: string, messageId: string, text: string) =>
    call<Answer<'/api/dms/{id}/messages/{messageId}', 'patch'>>(
      'PATCH',
      `/api/dms/${enc(id)}/messages/${enc(messageId)}`,
      { text },
    ),
  /** Deletes one's own message (the `dm` event brings it deleted). */
  remove: (id: string, messageId: string) =>
    call<Answer<'/api/dms/{id}/messages/{messageId}', 'delete'>>(
      'DELETE',
      `/api/dms/${enc(id)}/messages/${enc(messageId)}`,
    ),
  read: (id: string) => call('POST', `/api/dms/${enc(id)}/read`),
  safety: (id: string) => call<ApiSafety>('GET', `/api/dms/${enc(id)}/safety`),
  /** Marks a member's keys verified (which also acknowledges a change), or clears that. */
  verify: (id: string, username: string, verified: boolean) =>
    call<ApiSafety>('PUT', `/api/dms/${enc(id)}/safety`, { username, verified }),
  blocks: () => call<Answer<'/api/blocks'>>('GET', '/api/blocks'),
  block: (username: string) =>
    call<Answer<'/api/blocks/{username}', 'put'>>('PUT', `/api/blocks/${enc(username)}`),
  unblock: (username: string) =>
    call<Answer<'/api/blocks/{username}', 'delete'>>('DELETE', `/api/blocks/${enc(username)}`),
};

/** What the event stream tells the DM views; `resync` follows a gap in the stream. */
export type DmEvent =
  | { type: 'dm'; conversationId: string; message: ApiDmMessage }
  | { type: 'dm_state'; conversationId: string; id: string; state: ApiDmMessage['state'] }
  | { type: 'dms' }
  | { type: 'resync' };

const bus = new EventTarget();

/** Passes an event of the stream on to the DM views. */
export function publishDm(e: DmEvent): void {
  bus.dispatchEvent(new CustomEvent<DmEvent>('dm', { detail: e }));
}

/** Calls `on` (its latest version) with every DM event while the component is mounted. */
export function useDmEvents(on: (e: DmEvent) => void): void {
  const latest = useRef(on);
  latest.current = on;
  useEffect(() => {
    const listener = (e: Event) => latest.current((e as CustomEvent<DmEvent>).detail);
    bus.addEventListener('dm', listener);
    return () => bus.removeEventListener('dm', listener);
  }, []);
}

/** The other members of a conversation. */
export function others(dm: ApiDm, me: string): string[] {
  return dm.members.filter((m) => m !== me);
}

/** A conversation just started, whose view is to put the focus in its composer once shown. */
let toWriteIn: string | null = null;

/** Asks the view of conversation `id` to take the focus for writing when it is shown. */
export function writeOnOpen(id: string): void {
  toWriteIn = id;
}

/** Whether the view of conversation `id` was asked to take the focus (asked once). */
export function takeWriteOnOpen(id: string): boolean {
  if (toWriteIn !== id) return false;
  toWriteIn = null;
  return true;
}
