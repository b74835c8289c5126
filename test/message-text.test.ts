/**
 * A plain message text (words, digits, spaces, `,'!?`) skips the markdown parser
 * (web/src/MessageText.tsx `isPlain`): rendered directly, it must be exactly what the parser
 * would make of it, and a text with any markdown, autolink, emoji or entity is never plain.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { renderToStaticMarkup } from 'react-dom/server';
import { isPlain, render, renderText } from '../web/src/MessageText.js';

const html = renderToStaticMarkup;

describe('message text: the plain fast path', () => {
  it('renders a plain text exactly as the markdown parser does', () => {
    // Characters and pieces of what the parser acts on (links, emoji, entities, lists).
    const chars = fc.constantFrom(
      ..."aZé漢٣09 ,'!?.:*_~#-@&;()[]\n".split(''),
      '😀',
      'www.',
      'x.com',
      'https://a.b',
      ':smile:',
      '&amp;',
      '1.',
      '\n- ',
    );
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 30 }), (cs) => {
        const text = cs.join('');
        if (isPlain(text)) expect(html(renderText(text))).toBe(html(render(text)));
      }),
      { numRuns: 2000 },
    );
    for (const text of ['live 1234', 'cached message 99', "it's ok, really!?", 'é 漢字 ٣'])
      expect(isPlain(text), text).toBe(true);
  });

  it('sends every text with markdown, links, emoji or entities through the parser', () => {
    for (const text of [
      '*bold*',
      '1. one',
      '1) one',
      '- item',
      '# title',
      'see www.example.com',
      'https://example.com',
      'a@example.com',
      ':smile:',
      'a &amp; b',
      '~~gone~~',
      '`code`',
      '> quote',
      'a\nb',
      ' lead',
      'trail ',
      'two  spaces',
      '',
    ])
      expect(isPlain(text), JSON.stringify(text)).toBe(false);
  });
});
