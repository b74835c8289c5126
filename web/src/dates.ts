/**
 * How the UI writes a moment: a message's day (the log's separators), its time and its full date.
 * One Intl formatter each, made once: `toLocale…String` with options builds a new formatter on
 * every call, which cost more than the rest of a burst's render (issue 19 item 5).
 */
const dayFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'long',
  day: 'numeric',
});
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

/** The day a message was written, as the log's separators say it ("December 3, 2026"). */
export function day(ts: number): string {
  return dayFormat.format(ts);
}

/** Whether two moments fall on the same local day (without formatting either). */
export function sameDay(a: number, b: number): boolean {
  const x = new Date(a);
  const y = new Date(b);
  return (
    x.getDate() === y.getDate() &&
    x.getMonth() === y.getMonth() &&
    x.getFullYear() === y.getFullYear()
  );
}

/** Hours and minutes ("09:41"). */
export function time(ts: number): string {
  return timeFormat.format(ts);
}

/** The full date and time (a title). */
export function full(ts: number): string {
  return fullFormat.format(ts);
}
