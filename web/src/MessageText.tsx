/**
 * A message's text as markdown: a CommonMark subset with GFM strikethrough, autolinks and
 * tables, code spans and fenced code, `:shortcode:` emoji. Raw HTML is never interpreted
 * (react-markdown shows it as text; there is no rehype-raw), only a fixed list of elements is
 * produced, links go to http:, https: or mailto: only and open in a new tab without an opener or a
 * referrer, and nothing is ever loaded from elsewhere: an image is shown as a link to it.
 */
import { memo, useState, type ReactElement, type ReactNode } from 'react';
import { createPortal } from 'react-dom';
import Markdown, { type Components, type Options } from 'react-markdown';
import remarkEmoji from 'remark-emoji';
import remarkGfm from 'remark-gfm';
import { Confirm } from './Confirm.js';

/** The only URL schemes a message may link to. */
const LINK_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);

/**
 * The elements a message may produce; anything else (footnote sections, task-list checkboxes,
 * …) is unwrapped to its contents. Headings are allowed here only to be drawn as bold text.
 */
const ALLOWED: string[] = [
  'p',
  'br',
  'strong',
  'em',
  'del',
  'code',
  'pre',
  'a',
  'img',
  'blockquote',
  'ul',
  'ol',
  'li',
  'table',
  'thead',
  'tbody',
  'tr',
  'th',
  'td',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
];

/** An absolute http:, https: or mailto: URL, normalised as the browser will read it; else nothing. */
export function safeUrl(url: string): string | undefined {
  try {
    // The WHATWG parser is the one the browser applies to the href: it strips the tabs, newlines
    // and control characters that would otherwise hide a `javascript:` from a naive check.
    const parsed = new URL(url);
    return LINK_PROTOCOLS.has(parsed.protocol) ? parsed.href : undefined;
  } catch {
    return undefined; // relative, or not a URL: not a link
  }
}

/**
 * Whether a link's text is its own address (`https://x.example`, an autolink `www.x.example`, an
 * e-mail address): then it says where it goes. Any other text may say anything.
 */
export function showsItsAddress(text: ReactNode, href: string): boolean {
  if (typeof text !== 'string') return false;
  const t = text.trim();
  return [t, `http://${t}`, `https://${t}`, `mailto:${t}`].some((u) => safeUrl(u) === href);
}

/**
 * Link, or plain text when the URL was refused. A link whose text is not its address (markdown's
 * `[text](url)`: the text may name another site) asks first, showing where it goes, as Discord
 * does; one that shows its address opens at once. Either opens a new tab without an opener or a
 * referrer.
 */
function Link({
  href,
  title,
  children,
}: {
  href?: string | undefined;
  title?: string | undefined;
  children?: ReactNode;
}) {
  const [asking, setAsking] = useState(false);
  if (!href) return <span className="unlinked">{children}</span>;
  const masked = !showsItsAddress(children, href);
  return (
    <>
      <a
        href={href}
        title={title ?? (masked ? href : undefined)}
        target="_blank"
        rel="noopener noreferrer"
        onClick={
          masked
            ? (e) => {
                e.preventDefault();
                setAsking(true);
              }
            : undefined
        }
      >
        {children}
      </a>
      {/* On the page's body: a dialog is not text of a paragraph. */}
      {asking &&
        createPortal(
          <Confirm
            title="Leaving Hybrid Chat"
            text={`This link goes to ${href}`}
            action="Open link"
            onAnswer={(yes) => {
              setAsking(false);
              if (yes) window.open(href, '_blank', 'noopener,noreferrer');
            }}
          />,
          document.body,
        )}
    </>
  );
}

/** A heading inside a message is emphasis, not a heading of the page. */
function Heading({ children }: { children?: ReactNode }) {
  return (
    <p className="heading">
      <strong>{children}</strong>
    </p>
  );
}

const components: Components = {
  a: ({ href, title, children }) => (
    <Link href={href} title={title}>
      {children}
    </Link>
  ),
  // Never load a remote image (the page's CSP would refuse it anyway): link to it instead, or
  // show its description when the URL was refused.
  img: ({ src, alt }) => (
    <Link
      href={typeof src === 'string' ? src : undefined}
    >{`image: ${alt || src || 'untitled'}`}</Link>
  ),
  h1: ({ children }) => <Heading>{children}</Heading>,
  h2: ({ children }) => <Heading>{children}</Heading>,
  h3: ({ children }) => <Heading>{children}</Heading>,
  h4: ({ children }) => <Heading>{children}</Heading>,
  h5: ({ children }) => <Heading>{children}</Heading>,
  h6: ({ children }) => <Heading>{children}</Heading>,
};

interface HastNode {
  type: string;
  properties?: Record<string, unknown>;
  children?: HastNode[];
}

/** Drops element ids (footnotes make them): no clashes between messages, no DOM clobbering. */
function stripIds() {
  const visit = (node: HastNode) => {
    if (node.properties) delete node.properties.id;
    node.children?.forEach(visit);
  };
  return (tree: HastNode) => visit(tree);
}

const remarkPlugins: Options['remarkPlugins'] = [[remarkGfm, { singleTilde: false }], remarkEmoji];
const rehypePlugins: Options['rehypePlugins'] = [stripIds];

/**
 * Quotes and list items one line may open, one in another, before the text is shown as written
 * instead: the parser recurses once per level, and a message of 4,000 characters nesting one in
 * each two (`>>>>…`, `- - - …`) threw "Maximum call stack size exceeded" after seconds of work,
 * taking the page down for every reader of the channel (test/outsider/hostile-content.test.ts).
 */
export const MAX_NESTING = 16;
const CONTAINER = /^ {0,3}(?:>|[-*+](?=[ \t])|\d{1,9}[.)](?=[ \t]))[ \t]?/;

/** Whether some line of `text` opens more than MAX_NESTING quotes or list items. */
export function tooDeep(text: string): boolean {
  for (const line of text.split('\n')) {
    let rest = line;
    for (let n = 0; ; n++) {
      const m = CONTAINER.exec(rest);
      if (!m) break;
      if (n === MAX_NESTING) return true;
      rest = rest.slice(m[0].length);
    }
  }
  return false;
}

/** A text shown as written: no markup, its line breaks kept. */
function asWritten(text: string): ReactElement {
  return <p className="as-written">{text}</p>;
}

/** Texts rendered at most kept (a few screens of rows scrolled through, and back). */
const RENDERED_MAX = 1000;
/** The latest texts rendered, oldest first: a row scrolled back into view is not parsed again. */
const rendered = new Map<string, ReactElement>();

/**
 * A text's markdown, rendered: `Markdown` is called as a function (it uses no hooks) so that its
 * result, a tree of elements, can be kept; parsing builds a processor with every plugin per call.
 */
export function render(text: string): ReactElement {
  const hit = rendered.get(text);
  if (hit) {
    rendered.delete(text);
    rendered.set(text, hit);
    return hit;
  }
  let tree: ReactElement;
  try {
    tree = tooDeep(text)
      ? asWritten(text)
      : Markdown({
          children: text,
          remarkPlugins,
          rehypePlugins,
          allowedElements: ALLOWED,
          unwrapDisallowed: true,
          urlTransform: safeUrl,
          components,
        });
  } catch {
    // Whatever else the parser cannot take costs this message its markup, never the page.
    tree = asWritten(text);
  }
  rendered.set(text, tree);
  if (rendered.size > RENDERED_MAX) rendered.delete(rendered.keys().next().value!);
  return tree;
}

/**
 * Words, digits, spaces and `,'!?` between them: no markdown, autolink, emoji or entity can start
 * in such a text, which renders as one paragraph (test/message-text.test.ts checks it against the
 * parser). Most chat lines are this, and skip the parser.
 */
const PLAIN = /^[\p{L}\p{N}](?:[\p{L}\p{N} ,'!?]*[\p{L}\p{N}'!?])?$/u;

/** Whether `text` renders as itself, one paragraph, without parsing. */
export function isPlain(text: string): boolean {
  return PLAIN.test(text) && !text.includes('  ');
}

/** A message's text, rendered: a plain one directly, any other through the parser. */
export function renderText(text: string): ReactElement {
  return isPlain(text) ? <p>{text}</p> : render(text);
}

/** One message's text, rendered. */
export const MessageText = memo(function MessageText({ text }: { text: string }) {
  return <div className="text">{renderText(text)}</div>;
});
