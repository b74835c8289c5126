// A new user coming from Discord, knowing README only (the fourth walk): what they met first.
//
// 1. Opening a channel or a conversation left the focus where the click was: what the user then
//    typed went nowhere, and Enter pressed "Message" again. The message never left.
// 2. A long name (31 characters, allowed) pushed its row's Message and Remove past the member
//    list's edge (the owner could not remove that member), and the user's own name in the panel
//    ran into the chat column.
// 3. "Your peer is not running; the message was not sent" took a share of the composer's row,
//    squeezing the text box to a word a line; once the peer was back the box stayed that tall.
// 4. Below 900 px the member list opens over the page; Escape and a press outside did not close it.
// 5. A message edited down to nothing and saved was silently left as it was; Discord asks
//    whether to delete it.
// 6. The quote above a reply showed `:smile:` where the message itself shows 😄.
// 7. A screen reader heard a channel with unread messages as "# general 2" (its badge's label
//    unread), and an empty "Message actions" toolbar on every message a visitor reads.
// 8. React, "heart", Enter reacted 😍 (heart_eyes); ❤️ was eighth. Discord's picker puts ❤️ first.
// 9. No emoji could be found from the composer: Discord suggests them as `:hea` is typed.
// 10. "(edited)" stood on a line of its own under the text; Discord puts it at the end of it.
// 11. "Go live" without a camera announced a stream, then said only the browser's "Requested
//     device not found".
// 12. Every message was a Tab stop of its own (Shift+Tab from the composer went back one message
//     at a time) and the arrow keys did nothing; Discord's log is one stop, Up/Down inside it.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { launchHchat } from '../hchat-spawn.js';
import { api } from '../testnet.js';
import { channel, clickable, openFromHome, post, within, world } from './newuser2-lib.js';

const LONG = 'maximilian_von_longname_example';
const w = world(['alice', 'bob', LONG]);

describe('a new user: focus, long names, notices, the member drawer, empty edits, quotes', () => {
  it('opening a channel or a conversation puts the caret in its message box: typed, Enter sends it', async () => {
    await channel(w, 'alice', 'typing-first', ['bob']);
    const { page, errors, live } = await openPage(w.ui.bob!);
    await live;
    await openFromHome(page, 'typing-first', 'alice');
    await page.keyboard.type('straight into the box');
    await page.keyboard.press('Enter');
    await page.getByRole('article', { name: /bob: straight into the box/ }).waitFor();
    // A conversation opened from the member list: the same.
    await page.getByRole('button', { name: 'Message alice' }).click();
    // As soon as the conversation shows (its composer, not the channel's still there before).
    await page.getByLabel('Conversation with alice').waitFor();
    await page.keyboard.type('hi alice, first try');
    await page.keyboard.press('Enter');
    await page.getByRole('article', { name: /bob: hi alice, first try/ }).waitFor();
    // The conversation's log is one Tab stop too, Up moving to the message before (finding 12).
    await page.keyboard.type('and a second');
    await page.keyboard.press('Enter');
    await page.getByRole('article', { name: 'bob: and a second' }).waitFor();
    const now = () => page.evaluate(() => document.activeElement?.getAttribute('aria-label'));
    for (let i = 0; i < 5 && (await now()) !== 'bob: and a second'; i++)
      await page.keyboard.press('Shift+Tab');
    expect(await now()).toBe('bob: and a second');
    await page.keyboard.press('ArrowUp');
    expect(await now()).toBe('bob: hi alice, first try');
    expect(errors).toEqual([]);
  });

  it('a 31-character name is cut, not spilled: its Message and Remove stay in the member list, its own name in the sidebar', async () => {
    await channel(w, 'alice', 'long-names', [LONG]);
    const { page, errors } = await openPage(w.ui.alice!);
    await openFromHome(page, 'long-names', 'alice');
    const list = page.getByRole('complementary', { name: 'Members' });
    const row = list.getByRole('listitem').filter({ hasText: LONG });
    await row.waitFor();
    const edge = (await list.boundingBox())!;
    for (const name of [`Message ${LONG}`, `Remove ${LONG} from the channel`]) {
      const button = row.getByRole('button', { name });
      const b = (await button.boundingBox())!;
      expect(b.x + b.width, name).toBeLessThanOrEqual(edge.x + edge.width + 0.5);
      expect(await clickable(button), name).toBe('yes');
    }
    const own = await openPage(w.ui[LONG]!);
    const sidebar = (await own.page
      .getByRole('complementary', { name: 'Channels' })
      .boundingBox())!;
    const name = own.page.getByRole('complementary', { name: 'Channels' }).getByText(LONG, {
      exact: true,
    });
    const n = (await name.boundingBox())!;
    expect(n.x + n.width).toBeLessThanOrEqual(sidebar.x + sidebar.width + 0.5);
    expect(errors).toEqual([]);
    expect(own.errors).toEqual([]);
  });

  it("at 1280 px short names show whole, in the member list beside Message and Remove, and in one's own panel (outside new user 8)", async () => {
    await channel(w, 'alice', 'short-names', ['bob']);
    const { page, errors } = await openPage(w.ui.alice!, { width: 1280, height: 800 });
    await openFromHome(page, 'short-names', 'alice');
    const list = page.getByRole('complementary', { name: 'Members' });
    const row = list.getByRole('listitem').filter({ hasText: 'bob' });
    await row.waitFor();
    const whole = (el: Element) => el.scrollWidth <= el.clientWidth;
    expect(await row.locator('.member-name').evaluate(whole)).toBe(true);
    // Its actions are there, pointed at or reached with Tab, and clickable.
    await row.hover();
    for (const name of ['Message bob', 'Remove bob from the channel']) {
      const button = row.getByRole('button', { name });
      expect(await button.evaluate((b) => getComputedStyle(b.parentElement!).opacity)).toBe('1');
      expect(await clickable(button), name).toBe('yes');
    }
    await page.mouse.move(0, 0);
    await row.getByRole('button', { name: 'Message bob' }).focus();
    expect(await row.locator('.member-actions').evaluate((e) => getComputedStyle(e).opacity)).toBe(
      '1',
    );
    const mine = page.locator('.user-panel .me-name');
    expect(await mine.textContent()).toBe('alice');
    expect(await mine.evaluate(whole)).toBe(true);
    expect(errors).toEqual([]);
  });

  it('"the message was not sent" takes a line of its own; with the peer back the box is one line again', async () => {
    // A peer of its own, stopped and started again on the same port, as a user's would be.
    const data = path.join(w.dir, 'dora');
    const args = ['peer', '--server', w.pin, '--data', data];
    const first = launchHchat(args, {}, 40_000);
    const ui = (await first.ready).ready.ui!;
    const r = await api(ui, 'POST', '/api/register', { username: 'dora', password: 'dora-pass1' });
    expect(r.status).toBe(201);
    expect(
      (await api(ui, 'POST', '/api/login', { username: 'dora', password: 'dora-pass1' })).status,
    ).toBe(200);
    await channel({ ...w, ui: { ...w.ui, dora: ui } }, 'dora', 'notices');
    const { page } = await openPage(ui);
    await openFromHome(page, 'notices', 'dora');
    const box = page.getByRole('textbox', { name: 'Message' });
    const oneLine = (await box.boundingBox())!.height;
    first.proc.kill('SIGTERM');
    await first.exited;
    await box.fill('written while my peer is down');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'not sent' }).waitFor();
    const composer = (await box.evaluate((el) => el.parentElement!.getBoundingClientRect().width))!;
    expect((await box.boundingBox())!.width).toBeGreaterThan(composer / 2);
    const port = new URL(ui).port;
    const again = launchHchat([...args, '--ui-port', port], {}, 40_000);
    try {
      await again.ready;
      await page.getByRole('alert').filter({ hasText: 'not sent' }).waitFor({ state: 'detached' });
      expect(await within(3000, async () => (await box.boundingBox())!.height <= oneLine + 1)).toBe(
        true,
      );
    } finally {
      again.proc.kill('SIGKILL');
      await again.exited;
    }
  });

  it('below 900 px the member list closes with Escape and with a press outside it', async () => {
    await channel(w, 'alice', 'drawer', ['bob']);
    const { page, errors } = await openPage(w.ui.bob!, { width: 800, height: 700 });
    await openFromHome(page, 'drawer', 'alice');
    const list = page.getByRole('complementary', { name: 'Members' });
    const toggle = page.getByRole('button', { name: 'Members', exact: true });
    await toggle.click();
    await list.waitFor();
    await page.keyboard.press('Escape');
    await list.waitFor({ state: 'hidden' });
    await toggle.click();
    await list.waitFor();
    await page.getByRole('heading', { name: '#drawer' }).click();
    await list.waitFor({ state: 'hidden' });
    expect(errors).toEqual([]);
  });

  it('a message edited down to nothing asks whether to delete it; kept, it stays; deleted, it goes', async () => {
    const id = await channel(w, 'alice', 'emptied', ['bob']);
    const { page, errors } = await openPage(w.ui.bob!);
    await openFromHome(page, 'emptied', 'alice');
    await post(w, 'bob', id, 'soon to be nothing');
    const msg = page.getByRole('article', { name: /bob: soon to be nothing/ });
    await msg.waitFor();
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.click();
    await page.keyboard.press('ArrowUp');
    const edit = page.getByRole('textbox', { name: 'Edit message' });
    await edit.fill('');
    await page.keyboard.press('Enter');
    const ask = page.getByRole('dialog', { name: 'Delete message' });
    await ask.getByRole('button', { name: 'Cancel' }).click();
    await ask.waitFor({ state: 'hidden' });
    expect(await msg.count()).toBe(1);
    await edit.fill('   ');
    await page.keyboard.press('Enter');
    await ask.getByRole('button', { name: 'Delete' }).click();
    await msg.waitFor({ state: 'detached' });
    const r = await api(w.ui.alice!, 'GET', `/api/channels/${id}/messages`);
    expect(JSON.stringify(r.body)).not.toContain('soon to be nothing');
    expect(errors).toEqual([]);
  });

  it('the quote above a reply draws :shortcode: emoji as the message does', async () => {
    const id = await channel(w, 'alice', 'quotes', ['bob']);
    const original = await post(w, 'alice', id, ':smile: good morning');
    const r = await api(w.ui.bob!, 'POST', `/api/channels/${id}/messages`, {
      text: 'morning!',
      replyTo: original,
    });
    expect(r.status).toBe(201);
    const { page, errors } = await openPage(w.ui.bob!);
    await openFromHome(page, 'quotes', 'alice');
    const reply = page.getByRole('article', { name: /bob: morning!/ });
    const quote = reply.getByRole('button', { name: /Jump|good morning/ }).first();
    await quote.waitFor();
    const text = await quote.textContent();
    expect(text).toContain('😄 good morning');
    expect(text).not.toContain(':smile:');
    expect(errors).toEqual([]);
  });

  it('a screen reader hears "2 unread" on a channel, and no empty toolbar on a visitor\'s messages', async () => {
    const id = await channel(w, 'alice', 'heard', ['bob']);
    const { page, errors } = await openPage(w.ui.bob!);
    await page.getByRole('heading', { name: /Directory/ }).waitFor();
    await post(w, 'alice', id, 'first unread');
    await post(w, 'alice', id, 'second unread');
    await page.getByRole('button', { name: /alice's channels, 2 unread/ }).click();
    await page.getByRole('button', { name: /^# ?heard 2 unread$/ }).waitFor();
    // A visitor's page: the messages carry no toolbar (nothing a visitor may do to them).
    const data = path.join(w.dir, 'guest');
    const p = launchHchat(['peer', '--server', w.pin, '--data', data], {}, 40_000);
    try {
      const ui = (await p.ready).ready.ui!;
      expect((await api(ui, 'POST', '/api/visitor', { name: 'guest' })).status).toBe(200);
      const v = await openPage(ui);
      await v.page.getByRole('button', { name: 'Join heard' }).click();
      await v.page.getByRole('article', { name: /alice: second unread/ }).waitFor();
      expect(await v.page.getByRole('toolbar', { name: 'Message actions' }).count()).toBe(0);
      expect(v.errors).toEqual([]);
    } finally {
      p.proc.kill('SIGKILL');
      await p.exited;
    }
    expect(errors).toEqual([]);
  });

  it('React, "heart", Enter reacts ❤️, the emoji named exactly so', async () => {
    const id = await channel(w, 'alice', 'hearts', ['bob']);
    await post(w, 'alice', id, 'we shipped it');
    const { page, errors } = await openPage(w.ui.bob!);
    await openFromHome(page, 'hearts', 'alice');
    const msg = page.getByRole('article', { name: /alice: we shipped it/ });
    await msg.hover();
    await msg.getByRole('button', { name: 'React', exact: true }).click();
    await msg.getByRole('searchbox', { name: 'Search emoji' }).waitFor();
    await page.keyboard.type('heart');
    await page.keyboard.press('Enter');
    await msg.getByRole('button', { name: '❤️ 1, reacted by bob' }).waitFor();
    expect(errors).toEqual([]);
  });

  it('typing :hea in the composer suggests emoji, ❤️ first; Enter puts it in, and the message carries it', async () => {
    await channel(w, 'alice', 'emoji-typing', ['bob']);
    const { page, errors } = await openPage(w.ui.bob!);
    await openFromHome(page, 'emoji-typing', 'alice');
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.click();
    await page.keyboard.type('so :hea');
    const list = page.getByRole('listbox', { name: 'Emoji' });
    await list.waitFor();
    expect(await list.getByRole('option').first().textContent()).toBe('❤️ :heart:');
    await page.keyboard.press('Enter');
    expect(await box.inputValue()).toBe('so ❤️ ');
    await page.keyboard.type('this');
    await page.keyboard.press('Enter');
    await page.getByRole('article', { name: /bob: so ❤️ this/ }).waitFor();
    // A time or a link is no emoji.
    await page.keyboard.type('at 12:30 see https://example.org');
    expect(await list.count()).toBe(0);
    expect(errors).toEqual([]);
  });

  it('"(edited)" ends the edited text\'s last line', async () => {
    const id = await channel(w, 'alice', 'edited-inline', ['bob']);
    const m = await post(w, 'bob', id, 'first draft');
    expect(
      (
        await api(w.ui.bob!, 'PATCH', `/api/channels/${id}/messages/${m}`, {
          text: 'second thoughts',
        })
      ).status,
    ).toBeLessThan(300);
    const { page, errors } = await openPage(w.ui.bob!);
    await openFromHome(page, 'edited-inline', 'alice');
    const msg = page.getByRole('article', { name: /bob: second thoughts/ });
    const text = msg.getByText('second thoughts', { exact: true });
    const mark = msg.getByText('(edited)', { exact: true });
    await mark.waitFor();
    const t = (await text.boundingBox())!;
    const e = (await mark.boundingBox())!;
    // On the text's line, after it.
    expect(e.y).toBeLessThan(t.y + t.height);
    expect(e.x).toBeGreaterThanOrEqual(t.x + t.width - 1);
    expect(errors).toEqual([]);
  });

  it('Go live without a camera says so in words, and no stream is announced', async () => {
    await channel(w, 'alice', 'no-camera', ['bob']);
    const { page, errors } = await openPage(w.ui.alice!);
    await openFromHome(page, 'no-camera', 'alice');
    const seen: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && /\/streams$/.test(new URL(r.url()).pathname)) seen.push(r.url());
    });
    await page.getByRole('button', { name: 'Go live' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: 'No camera or microphone was found: connect one to go live.' })
      .waitFor();
    expect(seen).toEqual([]);
    expect((await api(w.ui.bob!, 'GET', '/api/streams')).body).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('the log is one Tab stop for its messages: Up and Down move between them, Tab comes back to the last one', async () => {
    const id = await channel(w, 'alice', 'arrows', ['bob']);
    for (const t of ['one', 'two', 'three', 'four']) await post(w, 'alice', id, `msg ${t}`);
    const { page, errors } = await openPage(w.ui.bob!);
    await openFromHome(page, 'arrows', 'alice');
    await page.getByRole('article', { name: 'alice: msg four' }).waitFor();
    const now = () =>
      page.evaluate(() => {
        const el = document.activeElement;
        return `${el?.tagName.toLowerCase()} ${el?.getAttribute('aria-label')}`;
      });
    // Back from the composer (where opening put the caret): the first message reached is the newest.
    let at = await now();
    for (let i = 0; i < 5 && !at.startsWith('article'); i++) {
      await page.keyboard.press('Shift+Tab');
      at = await now();
    }
    expect(at).toBe('article alice: msg four');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    expect(await now()).toBe('article alice: msg two');
    await page.keyboard.press('ArrowDown');
    expect(await now()).toBe('article alice: msg three');
    // One more Shift+Tab leaves the messages for the log itself, not for another message…
    await page.keyboard.press('Shift+Tab');
    expect(await now()).toBe('div Messages');
    // …and Tab comes back to the message it left.
    await page.keyboard.press('Tab');
    expect(await now()).toBe('article alice: msg three');
    expect(errors).toEqual([]);
  });
});
