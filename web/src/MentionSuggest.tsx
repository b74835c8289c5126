/**
 * Names suggested while a mention is typed in the composer (`@b` → bob, as in Discord): the
 * channel's members whose name starts with what follows the `@`, and `@here`; and emoji while a
 * `:name` is (`:hea` → ❤️ heart, 😍 heart_eyes…, emoji-find.ts). Arrow keys move through them,
 * Enter or Tab puts `@name ` or the emoji in the text (Enter sends when the name in focus is
 * typed out already), Escape closes the list. The text box stays
 * focused throughout (the list is its `aria-activedescendant`), so a screen reader hears the
 * option in focus.
 */
import { useEffect, useRef, useState, type KeyboardEvent, type RefObject } from 'react';
import { api } from './api.js';
import { SPECIAL_MENTIONS, mentionAt } from '../../src/shared/mention-syntax.js';
import { emojiAt, findEmoji } from './emoji-find.js';

/** At most this many names at once. */
const SHOWN = 8;

export const SUGGEST_ID = 'mention-suggest';

/** One suggestion: what it puts in the text, and what the list shows (an emoji's name). */
type Item = { insert: string; name: string };

/**
 * The open list: of names (`@`) or emoji (`:`), what was typed after the mark, the items
 * offered, and the one in focus.
 */
type Open = { kind: 'mention' | 'emoji'; query: string; items: Item[]; active: number };

/**
 * The suggestions of the composer's text box `box`. `look(text, caret)` is called as the text or
 * the caret changes; `key(e)` answers the keys the list takes (true: handled, do not act on it);
 * `picked` tells the composer the new text and where its caret goes. A pick reads the box as it is
 * then, and replaces the whole name around the caret.
 */
export function useMentionSuggest(
  channelId: string,
  me: string,
  box: RefObject<HTMLTextAreaElement | null>,
  picked: (text: string, caret: number) => void,
) {
  const [open, setOpen] = useState<Open | null>(null);
  const members = useRef<{ channelId: string; names: string[] } | null>(null);
  const latest = useRef({ text: '', caret: 0 });
  useEffect(() => setOpen(null), [channelId]);

  /** The channel's members, asked once per channel (a failure offers none, and asks again). */
  async function names(): Promise<string[]> {
    if (members.current?.channelId === channelId) return members.current.names;
    const list = await api.members(channelId).catch(() => null);
    if (!list) return [];
    const found = list
      .map((m) => m.username)
      .filter((n) => n.toLowerCase() !== me.toLowerCase())
      .sort((a, b) => a.localeCompare(b));
    members.current = { channelId, names: found };
    return found;
  }

  async function look(text: string, caret: number) {
    latest.current = { text, caret };
    const colon = emojiAt(text, caret);
    if (colon) {
      const items = findEmoji(colon.query.toLowerCase(), SHOWN).map((e) => ({
        insert: e.emoji,
        name: e.name,
      }));
      return setOpen(
        items.length > 0 ? { kind: 'emoji', query: colon.query, items, active: 0 } : null,
      );
    }
    const at = mentionAt(text, caret);
    if (!at) return setOpen(null);
    const q = at.query.toLowerCase();
    const all = [...(await names()), ...SPECIAL_MENTIONS];
    // The text moved on while the members were asked: that later call decides.
    if (latest.current.text !== text || latest.current.caret !== caret) return;
    const shown = all.filter((n) => n.toLowerCase().startsWith(q)).slice(0, SHOWN);
    setOpen(
      shown.length > 0
        ? {
            kind: 'mention',
            query: at.query,
            items: shown.map((n) => ({ insert: `@${n}`, name: n })),
            active: 0,
          }
        : null,
    );
  }

  function pick(item: Item) {
    setOpen(null);
    const el = box.current;
    const at =
      el && (emojiAt(el.value, el.selectionStart) ?? mentionAt(el.value, el.selectionStart));
    if (!el || !at) return;
    const before = `${el.value.slice(0, at.start)}${item.insert} `;
    picked(before + el.value.slice(at.end).replace(/^ /, ''), before.length);
  }

  function key(e: KeyboardEvent): boolean {
    if (!open) return false;
    const n = open.items.length;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      const step = e.key === 'ArrowDown' ? 1 : n - 1;
      setOpen({ ...open, active: (open.active + step) % n });
    } else if (e.key === 'Enter' && !e.shiftKey && whole(open)) {
      // The name is typed out already: Enter sends, as it would without the list.
      setOpen(null);
      return false;
    } else if ((e.key === 'Enter' && !e.shiftKey) || e.key === 'Tab') {
      pick(open.items[open.active]!);
    } else if (e.key === 'Escape') {
      setOpen(null);
    } else return false;
    e.preventDefault();
    return true;
  }

  /** The name in focus is what was typed, in full (a mention: an emoji is always put in). */
  const whole = (o: Open) =>
    o.kind === 'mention' && o.items[o.active]!.name.toLowerCase() === o.query.toLowerCase();

  /** What the text box carries for assistive technology while the list is open. */
  const boxProps = {
    'aria-autocomplete': 'list' as const,
    ...(open
      ? { 'aria-controls': SUGGEST_ID, 'aria-activedescendant': `${SUGGEST_ID}-${open.active}` }
      : {}),
  };

  const list = open && (
    <ul
      className="mention-suggest"
      id={SUGGEST_ID}
      role="listbox"
      aria-label={open.kind === 'emoji' ? 'Emoji' : 'Mention'}
    >
      {open.items.map((item, i) => (
        <li
          key={item.name}
          id={`${SUGGEST_ID}-${i}`}
          role="option"
          aria-selected={i === open.active}
          className={i === open.active ? 'active' : undefined}
          // The text box keeps the focus: a click picks without a blur.
          onMouseDown={(e) => e.preventDefault()}
          onClick={() => pick(item)}
        >
          {open.kind === 'emoji' ? `${item.insert} :${item.name}:` : item.insert}
          {open.kind === 'mention' && SPECIAL_MENTIONS.includes(item.name) && (
            <span className="hint"> everyone online</span>
          )}
        </li>
      ))}
    </ul>
  );

  return { look, key, boxProps, list, close: () => setOpen(null) };
}
