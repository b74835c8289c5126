/**
 * Direct messages through the local API (issue 15; README "Direct messages"), and their live
 * events (`dm`, `dm_state`, `dms`), handed from the one EventSource (Chat.tsx) to the DM views.
 */
import { useEffect, useRef } from 'react';
import { call } from './api.js';
import type { ApiDm, ApiDmMessage, ApiSafety } from '../../src/peer/api-shapes.js';

export type { ApiDm, ApiDmMessage, ApiSafety };

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
    call<{ messages: ApiDmMessage[] }>(
      'GET',
      `/api/dms/${enc(id)}/messages?limit=${DM_PAGE}${before ? `&before=${enc(before)}` : ''}`,
    ),
  post: (id: string, text: string) =>
    call<{ id: string; state: ApiDmMessage['state'] }>('POST', `/api/dms/${enc(id)}/messages`, {
      text,
    }),
  read: (id: string) => call('POST', `/api/dms/${enc(id)}/read`),
  safety: (id: string) => call<ApiSafety>('GET', `/api/dms/${enc(id)}/safety`),
  /** Marks a member's keys verified (which also acknowledges a change), or clears that. */
  verify: (id: string, username: string, verified: boolean) =>
    call<ApiSafety>('PUT', `/api/dms/${enc(id)}/safety`, { username, verified }),
  blocks: () => call<{ blocked: string[] }>('GET', '/api/blocks'),
  block: (username: string) => call<{ blocked: string[] }>('PUT', `/api/blocks/${enc(username)}`),
  unblock: (username: string) =>
    call<{ blocked: string[] }>('DELETE', `/api/blocks/${enc(username)}`),
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
