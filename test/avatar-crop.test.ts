/**
 * The pure parts of the avatars UI (web/src/avatar-image.ts, web/src/avatars.ts): whatever the
 * picture's size and however it is zoomed and moved, the square kept lies inside the picture; a
 * default avatar's initials and colour depend on the name alone.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  centreCrop,
  maxZoom,
  moveCrop,
  zoomCrop,
  type Crop,
  type Size,
} from '../web/src/avatar-image.js';
import { defaultAvatar } from '../web/src/avatars.js';

function inside(p: Size, c: Crop): boolean {
  const e = 1e-9;
  return (
    c.side > 0 &&
    c.x >= -e &&
    c.y >= -e &&
    c.x + c.side <= p.width + e &&
    c.y + c.side <= p.height + e
  );
}

describe('avatar crop', () => {
  it('starts with the largest square in the middle', () => {
    expect(centreCrop({ width: 600, height: 400 })).toEqual({ x: 100, y: 0, side: 400 });
    expect(centreCrop({ width: 80, height: 120 })).toEqual({ x: 0, y: 20, side: 80 });
  });

  it('stays inside the picture whatever the zooms and moves', () => {
    const step = fc.oneof(
      fc.record({ zoom: fc.double({ min: -2, max: 20, noNaN: true }) }),
      fc.record({
        dx: fc.double({ min: -1e4, max: 1e4, noNaN: true }),
        dy: fc.double({ min: -1e4, max: 1e4, noNaN: true }),
      }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8000 }),
        fc.integer({ min: 1, max: 8000 }),
        fc.array(step, { maxLength: 30 }),
        (width, height, steps) => {
          const p = { width, height };
          let c = centreCrop(p);
          for (const s of steps) {
            c = 'zoom' in s ? zoomCrop(p, c, s.zoom) : moveCrop(p, c, s.dx, s.dy);
            if (!inside(p, c)) return false;
            // Never smaller than the most zoomed square.
            if (c.side < Math.min(width, height) / maxZoom(p) - 1e-9) return false;
          }
          return true;
        },
      ),
    );
  });

  it('zooming keeps the centre where it can', () => {
    const p = { width: 1000, height: 1000 };
    const c = zoomCrop(p, centreCrop(p), 2);
    expect(c).toEqual({ x: 250, y: 250, side: 500 });
    expect(moveCrop(p, c, -1000, 0)).toEqual({ x: 0, y: 250, side: 500 });
  });
});

describe('default avatar', () => {
  it('shows up to two initials', () => {
    expect(defaultAvatar('alice').initials).toBe('A');
    expect(defaultAvatar('bob_smith').initials).toBe('BS');
    expect(defaultAvatar('guest one').initials).toBe('GO');
    expect(defaultAvatar('élodie.x.y').initials).toBe('ÉX');
    expect(defaultAvatar('__').initials).toBe('?');
  });

  it('has a colour that depends on the name alone, whatever its case, and varies between names', () => {
    expect(defaultAvatar('Alice').colour).toBe(defaultAvatar('alice').colour);
    const colours = new Set(
      ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'].map(
        (u) => defaultAvatar(u).colour,
      ),
    );
    expect(colours.size).toBeGreaterThan(3);
    for (const c of colours) expect(c).toBeGreaterThanOrEqual(0);
    for (const c of colours) expect(c).toBeLessThan(12);
  });
});
