// A new user coming from Discord, knowing README only ("Delete (yours …): the text is erased on
// every replica, a tombstone stays"; "A reply quotes the message it answers"). bob posts his
// password by mistake, carol answers "you just posted your password", bob deletes his message.
// On every page that was open (alice's, carol's) the message goes, but carol's reply still
// quotes it whole: "@bob my secret password is hunter2", until the page is loaded again (then
// "Original message was deleted", as the peer's API already says: `replyTo.deleted`). Only the
// deleter's own page updates the quote. An edit is the same: the quote keeps the old text.
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { api } from '../testnet.js';
import { channel, evidence, openFromHome, post, within, world } from './newuser2-lib.js';

const w = world(['alice', 'bob', 'carol']);

describe('a new user deletes a message someone answered', () => {
  it('the replies on open pages stop quoting a deleted message, and quote an edited one anew', async () => {
    const id = await channel(w, 'alice', 'oops', ['bob', 'carol']);
    const { page, errors, live } = await openPage(w.ui.alice!);
    await openFromHome(page, 'oops', 'alice');
    await live;

    const secret = await post(w, 'bob', id, 'my secret password is hunter2');
    const r = await api(w.ui.carol!, 'POST', `/api/channels/${id}/messages`, {
      text: 'you just posted your password',
      replyTo: secret,
    });
    expect(r.status).toBe(201);
    const reply = page.getByRole('article', { name: /carol: you just posted your password/ });
    await reply.getByText('my secret password is hunter2').waitFor();
    const del = await api(w.ui.bob!, 'DELETE', `/api/channels/${id}/messages/${secret}`);
    expect(del.status).toBe(200);
    // The message itself leaves alice's page…
    const gone = await within(
      8000,
      async () => (await page.getByRole('article', { name: /bob: my secret/ }).count()) === 0,
    );
    expect(gone, 'the deleted message leaves the page').toBe(true);
    // …and so does its text, everywhere on the page.
    const erased = await within(
      5000,
      async () =>
        !(await page.getByRole('log', { name: 'Messages' }).innerText()).includes('hunter2'),
    );
    await evidence(page, 'reply-quote-deleted');
    expect.soft(erased, 'the deleted text is gone from the page, reply quote included').toBe(true);

    // An edit: the quote shows the new text.
    const plan = await post(w, 'bob', id, 'meet at 5 pm');
    const r2 = await api(w.ui.carol!, 'POST', `/api/channels/${id}/messages`, {
      text: 'ok, see you then',
      replyTo: plan,
    });
    expect(r2.status).toBe(201);
    const answer = page.getByRole('article', { name: /carol: ok, see you then/ });
    await answer.getByText('meet at 5 pm').waitFor();
    const ed = await api(w.ui.bob!, 'PATCH', `/api/channels/${id}/messages/${plan}`, {
      text: 'meet at 6 pm',
    });
    expect(ed.status).toBe(200);
    await page.getByRole('article', { name: /bob: meet at 6 pm/ }).waitFor();
    expect(
      await within(5000, async () => (await answer.innerText()).includes('meet at 6 pm')),
      'the quote of an edited message shows its new text',
    ).toBe(true);
    expect(errors).toEqual([]);
  });
});
