/**
 * The local API's account, presence and channel routes (README "Local API"): sign up, log in,
 * enter as a visitor, log out; who is signed in, their status, the peers and the directory;
 * the joined channels, making and joining one, its members, typing and read marks; and the
 * event stream.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ChannelName, Password, Status, Username, Uuid, VisitorName } from '../protocol/common.js';
import type { PeerNode } from './node.js';
import { parse } from './api-parse.js';
import { NO_CONTENT, doc, raw } from './api-doc.js';
import {
  ApiChannel,
  DirectoryChannel,
  Me,
  Member,
  Peer,
  Registered,
  Session,
  SignedIn,
  StatusAnswer,
} from './api-shapes.js';
import { EventStreams } from './event-stream.js';

const Creds = z.object({ username: Username, password: Password });
const VisitorBody = z.object({ name: VisitorName });
const StatusBody = z.object({ status: Status });
const ChannelBody = z.object({ name: ChannelName, allowVisitors: z.boolean().default(false) });
const IdParam = z.object({ id: Uuid });
const EventsQuery = z.object({ since: z.coerce.number().int().min(0).optional() });

/** Adds the account, presence and channel routes, and the event stream. */
export function sessionRoutes(app: FastifyInstance, node: PeerNode): void {
  app.post(
    '/api/register',
    doc('Makes an account at the server', { body: Creds, response: { 201: Registered } }),
    async (req, reply) => {
      const b = parse(Creds, req.body, 'register');
      return reply.code(201).send(await node.register(b.username, b.password));
    },
  );
  app.post(
    '/api/login',
    doc('Logs in (a new session of this peer)', {
      body: Creds,
      description:
        'The new session replaces the current one (which logs out) only once the server opened ' +
        'it; a refused login leaves the current session, its link and its events as they were.',
      response: { 200: SignedIn },
    }),
    async (req) => {
      const b = parse(Creds, req.body, 'login');
      return node.login(b.username, b.password);
    },
  );
  app.post(
    '/api/visitor',
    doc('Enters as a visitor, under a name no user has', {
      body: VisitorBody,
      description:
        'Replaces the current session as a login does; refused (`E_NAME_TAKEN`: a user’s name), ' +
        'it leaves the current session as it was.',
      response: { 200: SignedIn },
    }),
    async (req) => {
      const b = parse(VisitorBody, req.body, 'visitor');
      return node.visitor(b.name);
    },
  );
  app.post(
    '/api/logout',
    doc('Ends the session', {
      description:
        'Nobody’s status is chosen while nobody is logged in: a peer its user had taken offline ' +
        'connects to the server again (for the next login, and to log this session out there).',
      response: { 204: NO_CONTENT },
    }),
    async (_req, reply) => {
      await node.logout();
      return reply.code(204).send();
    },
  );
  app.get(
    '/api/me',
    doc('Who is signed in here, and the link to the server', { response: { 200: Me } }),
    async () => node.me(),
  );
  // For the web UI's start: who is logged in, without a 401 when nobody is.
  app.get(
    '/api/session',
    doc('Who is signed in here, or null (never 401)', { response: { 200: Session } }),
    async () => {
      if (node.session) return { me: node.me() };
      const ended = node.sessionEnded;
      return ended ? { me: null, ended } : { me: null };
    },
  );
  app.put(
    '/api/status',
    doc('Sets the status: online, invisible, or offline (no connection at all)', {
      body: StatusBody,
      description:
        'The logged-in account’s choice on this peer, kept across restarts until it chooses ' +
        'again or logs out; logging in again ends an offline. `E_AUTH_REQUIRED` when nobody is ' +
        'logged in.',
      response: { 200: StatusAnswer },
    }),
    async (req) => {
      const b = parse(StatusBody, req.body, 'status');
      return node.setStatus(b.status);
    },
  );
  app.get(
    '/api/peers',
    doc('The sessions this user may see: its own, and its co-members’', {
      response: { 200: z.array(Peer) },
    }),
    async () => node.peers(),
  );
  app.get(
    '/api/directory',
    doc('Every channel at the server this user may join', {
      response: { 200: z.array(DirectoryChannel) },
    }),
    async () => node.directory(),
  );
  app.get(
    '/api/channels',
    doc('The joined channels, with their unread counts', {
      response: { 200: z.array(ApiChannel) },
    }),
    async () => node.channels(),
  );
  app.post(
    '/api/channels',
    doc('Makes a channel, hosted by this peer', {
      body: ChannelBody,
      response: { 201: ApiChannel },
    }),
    async (req, reply) => {
      const b = parse(ChannelBody, req.body, 'channel');
      return reply.code(201).send(await node.createChannel(b.name, b.allowVisitors));
    },
  );
  app.post(
    '/api/channels/:id/join',
    doc('Joins a channel (a visitor: views one that allows visitors)', {
      params: IdParam,
      response: { 200: ApiChannel },
    }),
    async (req) => {
      const { id } = parse(IdParam, req.params, 'channel id');
      return node.join(id);
    },
  );
  app.post(
    '/api/channels/:id/typing',
    doc('Tells the channel this user is typing', {
      params: IdParam,
      response: { 204: NO_CONTENT },
    }),
    async (req, reply) => {
      const { id } = parse(IdParam, req.params, 'channel id');
      await node.typing.send(id);
      return reply.code(204).send();
    },
  );
  app.get(
    '/api/channels/:id/members',
    doc('A channel’s members, online first', {
      params: IdParam,
      response: { 200: z.array(Member) },
    }),
    async (req) => {
      const { id } = parse(IdParam, req.params, 'channel id');
      return node.members(id);
    },
  );
  app.post(
    '/api/channels/:id/read',
    doc('Marks everything in the channel so far as read', {
      params: IdParam,
      response: { 204: NO_CONTENT },
    }),
    async (req, reply) => {
      const { id } = parse(IdParam, req.params, 'channel id');
      node.markRead(id);
      return reply.code(204).send();
    },
  );
  const streams = new EventStreams(node.events);
  // Streams end cleanly when the peer stops (a browser would log a cut one as an error).
  app.addHook('preClose', (done) => {
    streams.endAll();
    done();
  });
  app.get(
    '/api/events',
    doc('Live events, as server-sent events (README "Events")', {
      querystring: EventsQuery,
      description:
        'Each event is `id: <n>`, `event: <name>`, `data: <JSON>`; resume with `?since=<n>` or ' +
        '`Last-Event-ID`. A reader that falls too far behind gets `event: error` ' +
        '(`E_SLOW_CONSUMER`) and the stream ends.',
      response: { 200: raw('text/event-stream', 'The events, until the reader goes') },
    }),
    async (req, reply) => {
      const q = parse(EventsQuery, req.query, 'query');
      // The browser's own reconnection sends the last id it got as Last-Event-ID, with the URL
      // it was opened at: that header is newer than the URL's `since`, which would replay again.
      const header = req.headers['last-event-id'];
      const lastHeader = typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : NaN;
      streams.serve(req, reply, Number.isSafeInteger(lastHeader) ? lastHeader : q.since);
    },
  );
}
