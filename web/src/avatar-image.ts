/**
 * Making an avatar from a picture in the browser (README "Avatars"): the square of it that the
 * user chose (zoomed and moved), drawn at most 256×256 and encoded WebP, else PNG, else JPEG,
 * small enough for the local API (256 KiB).
 */
import { FILE_LIMITS } from '../../src/shared/limits.js';

/** The longest side of an avatar, in pixels. */
export const AVATAR_SIDE = 256;
/** The local API refuses a larger picture. */
const MAX_BYTES = FILE_LIMITS.maxAvatarBytes;

/** The square of the picture kept: its top-left corner and side, in the picture's pixels. */
export interface Crop {
  x: number;
  y: number;
  side: number;
}

/** The picture's size: what the crop moves within. */
export interface Size {
  width: number;
  height: number;
}

/** How far in one may zoom: up to 8×, and never to a square under 32 pixels of the picture. */
export function maxZoom(p: Size): number {
  return Math.max(1, Math.min(8, Math.min(p.width, p.height) / 32));
}

/** The largest square in the middle of the picture. */
export function centreCrop(p: Size): Crop {
  const side = Math.min(p.width, p.height);
  return { x: (p.width - side) / 2, y: (p.height - side) / 2, side };
}

/** The square at `zoom` (1: the largest), keeping its centre where it can. */
export function zoomCrop(p: Size, c: Crop, zoom: number): Crop {
  const z = Math.min(maxZoom(p), Math.max(1, zoom));
  const side = Math.min(p.width, p.height) / z;
  const cx = c.x + c.side / 2;
  const cy = c.y + c.side / 2;
  return inside(p, { x: cx - side / 2, y: cy - side / 2, side });
}

/** The square moved by (dx, dy) picture pixels, never past the picture's edges. */
export function moveCrop(p: Size, c: Crop, dx: number, dy: number): Crop {
  return inside(p, { x: c.x + dx, y: c.y + dy, side: c.side });
}

function inside(p: Size, c: Crop): Crop {
  return {
    x: Math.min(Math.max(0, c.x), p.width - c.side),
    y: Math.min(Math.max(0, c.y), p.height - c.side),
    side: c.side,
  };
}

/** Decodes a picture the browser can read (PNG, JPEG, WebP, GIF's first frame, …). */
export async function decodePicture(file: Blob): Promise<ImageBitmap> {
  if (file.type === 'image/svg+xml') throw new Error('An SVG cannot be an avatar: pick a photo');
  try {
    return await createImageBitmap(file);
  } catch {
    throw new Error('This file is not a picture this browser can read: pick a PNG, JPEG or WebP');
  }
}

/** Draws the crop into `canvas` at the canvas's size (the editor's preview). */
export function drawCrop(canvas: HTMLCanvasElement, picture: ImageBitmap, c: Crop): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(picture, c.x, c.y, c.side, c.side, 0, 0, canvas.width, canvas.height);
}

/**
 * The avatar's bytes: the crop at most AVATAR_SIDE square (a smaller crop is not enlarged),
 * WebP first (it keeps transparency and is small), else PNG, else JPEG on the app's background.
 */
export async function renderAvatar(picture: ImageBitmap, c: Crop): Promise<Blob> {
  const side = Math.max(1, Math.min(AVATAR_SIDE, Math.round(c.side)));
  const canvas = document.createElement('canvas');
  canvas.width = side;
  canvas.height = side;
  drawCrop(canvas, picture, c);
  const tries: Array<[string, number | undefined]> = [
    ['image/webp', 0.9],
    ['image/webp', 0.75],
    ['image/webp', 0.5],
    ['image/png', undefined],
    ['image/jpeg', 0.85],
    ['image/jpeg', 0.6],
  ];
  for (const [type, quality] of tries) {
    if (type === 'image/jpeg') {
      // No transparency in JPEG: what was clear shows the app's background, not black.
      const ctx = canvas.getContext('2d')!;
      ctx.globalCompositeOperation = 'destination-over';
      ctx.fillStyle = '#2b2d31';
      ctx.fillRect(0, 0, side, side);
      ctx.globalCompositeOperation = 'source-over';
    }
    const blob = await new Promise<Blob | null>((r) => canvas.toBlob(r, type, quality));
    // A browser that cannot encode `type` gives PNG instead: not what was asked, try the next.
    if (blob && blob.type === type && blob.size <= MAX_BYTES) return blob;
  }
  throw new Error('This picture could not be made small enough: try another one');
}
