/**
 * Silent pings (PROTOCOL.md §2.2 "Mentions count where the text names them"): an item's
 * `mentions` is signed with its text, but nothing made the two agree. A hostile member signs a
 * message with `mentions: ["here"]` or `["victim"]` whose text names nobody: the victim's peer
 * counted it as a mention (the red badge, `mentionsMe`, the toast of the web UI) although the
 * message shows none. A mention written in the text still counts.
 */
import { describe, expect, it } from 'vitest';
import { collectEvents, createTestnet, signIn, waitFor } from '../testnet.js';
import { mallorysChannel, sign } from './kit.js';
import { Cooldowns, decide, mentionsOwner } from '../../src/bot/rules.js';
import type { BotRule } from '../../src/bot/config.js';

describe('a hostile member’s signed mentions', () => {
  it('count only where the text names them: no badge, no mentionsMe, no event flag for a silent ping; a written @victim still counts', async () => {
    const net = await createTestnet({ peers: 1 });
    const victim = net.peers[0]!;
    await signIn(victim, 'victim');
    const { raw, mallory, ch } = await mallorysChannel(net, victim);
    const sse = collectEvents(victim.uiUrl);
    await sse.ready;
    const t = Date.now();
    const silentHere = sign(mallory, {
      channelId: ch,
      ts: t,
      text: 'nothing to see here',
      mentions: ['here'],
    });
    const silentName = sign(mallory, {
      channelId: ch,
      ts: t + 1,
      text: 'hello victim, how are you',
      mentions: ['victim'],
    });
    const written = sign(mallory, {
      channelId: ch,
      ts: t + 2,
      text: 'hey @victim, look',
      mentions: ['victim'],
    });
    // Her own message, edited to a text that names nobody, its edit signed with a mention.
    const plain = sign(mallory, { channelId: ch, ts: t + 3, text: 'an ordinary line' });
    for (const message of [silentHere, silentName, written, plain])
      await raw.request('post', { message });
    const edit = sign(mallory, {
      channelId: ch,
      ts: t + 4,
      kind: 'edit',
      target: plain.id,
      text: 'an ordinary line, edited',
      mentions: ['victim', 'here'],
    });
    await raw.request('post', { message: edit });

    // Pushed to the web UI (its toasts and highlights read `mentionsMe`): all four, and the edit.
    const pushes = (id: string) =>
      sse.events.filter((e) => e.event === 'message' && e.data?.message?.id === id);
    await waitFor(
      () =>
        [silentHere, silentName, written].every((m) => pushes(m.id).length > 0) &&
        pushes(plain.id).some((e) => e.data.message.editedAt !== undefined),
      10_000,
      'the pushes',
    );
    const pushed = (id: string) => pushes(id).some((e) => e.data.message.mentionsMe === true);
    expect({
      silentHere: pushed(silentHere.id),
      silentName: pushed(silentName.id),
      written: pushed(written.id),
      edited: pushed(plain.id),
    }).toEqual({ silentHere: false, silentName: false, written: true, edited: false });

    // The channel's red count (read before the page, which marks the channel read): the written
    // mention alone.
    const channels = (await victim.call('GET', '/api/channels')).body as any[];
    expect(channels.find((c) => c.id === ch)).toMatchObject({ unread: 4, mentions: 1 });

    const page = (await victim.call('GET', `/api/channels/${ch}/messages`)).body.messages as any[];
    const flag = (id: string) => page.find((m) => m.id === id)?.mentionsMe === true;
    expect({
      silentHere: flag(silentHere.id),
      silentName: flag(silentName.id),
      written: flag(written.id),
      edited: flag(plain.id),
    }).toEqual({ silentHere: false, silentName: false, written: true, edited: false });
    // The `mentions` a message shows are the ones its text names.
    expect(page.find((m) => m.id === silentHere.id)?.mentions ?? []).toEqual([]);
    expect(page.find((m) => m.id === written.id)?.mentions).toEqual(['victim']);
  });

  it('trigger no bot: `hchat bot`’s mention rule and away message fire on a written @name only', () => {
    const rules: BotRule[] = [
      { index: 0, trigger: { kind: 'mention' }, reply: 'yes?', cooldownMs: 0 },
    ];
    const seen = (text: string, mentions: string[]) => ({
      author: 'mallory',
      text,
      mentions,
      channel: 'trap',
      channelId: '019abcde-0000-7000-8000-0000000000c1',
    });
    const fires = (text: string, mentions: string[]) =>
      decide(rules, seen(text, mentions), { me: 'helper' }, new Cooldowns(), Date.now()) !==
      undefined;
    expect({
      silent: fires('nothing here', ['helper']),
      written: fires('hi @helper', ['helper']),
      awaySilent: mentionsOwner(seen('is anyone there', ['ann']), 'ann'),
      awayWritten: mentionsOwner(seen('is @ann there', ['ann']), 'ann'),
    }).toEqual({ silent: false, written: true, awaySilent: false, awayWritten: true });
  });
});
