/**
 * Files in the browser (README "Files"): an upload with its progress (XMLHttpRequest, the one
 * browser API that reports upload progress), the size and tiny preview of an image made with a
 * canvas before it is sent, and a download with its progress saved through an object URL.
 */
import { ApiError, errorOf, reach, type ChatFile } from './api.js';
import { authHeaders } from './auth.js';
import { FILE_LIMITS } from '../../src/shared/limits.js';

/** Images shown inline: the types the local API serves `inline` (never SVG: it can hold script). */
const INLINE = /^image\/(png|jpeg|gif|webp)$/;
/** The preview's longest side, then smaller ones until its data URL fits. */
const PREVIEW_SIDES = [32, 24, 16];
/** The local API refuses a longer `X-Preview`. */
const MAX_PREVIEW_CHARS = FILE_LIMITS.maxPreviewChars;
/** Files one message carries at most (the local API refuses more). */
export const MAX_FILES = FILE_LIMITS.filesPerMessage;

/** What the browser tells the API about an image it uploads. */
export interface ImageInfo {
  width: number;
  height: number;
  preview?: string;
}

/** True for a file shown as an image in the message (an image of a type served inline). */
export function isInlineImage(f: Pick<ChatFile, 'type' | 'image'>): boolean {
  return !!f.image && INLINE.test(f.type);
}

/** A size for people: "512 B", "4.2 KiB", "20.0 MiB". */
export function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let n = bytes / 1024;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(1)} ${units[i]}`;
}

/** The natural size and a tiny preview of an image; undefined for other files or unreadable ones. */
export async function imageInfo(file: Blob): Promise<ImageInfo | undefined> {
  if (!INLINE.test(file.type)) return undefined;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return undefined; // not an image after all: sent as a plain file
  }
  try {
    const { width, height } = bitmap;
    if (width < 1 || height < 1 || width > 65535 || height > 65535) return undefined;
    const preview = previewOf(bitmap);
    return preview ? { width, height, preview } : { width, height };
  } finally {
    bitmap.close();
  }
}

/** A data URL of at most MAX_PREVIEW_CHARS: webp (keeps transparency), else jpeg on a dark ground. */
function previewOf(bitmap: ImageBitmap): string | undefined {
  for (const side of PREVIEW_SIDES) {
    const scale = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
    const w = Math.max(1, Math.round(bitmap.width * scale));
    const h = Math.max(1, Math.round(bitmap.height * scale));
    for (const type of ['image/webp', 'image/jpeg']) {
      const canvas = document.createElement('canvas');
      canvas.width = w;
      canvas.height = h;
      const ctx = canvas.getContext('2d');
      if (!ctx) return undefined;
      if (type === 'image/jpeg') {
        ctx.fillStyle = '#2b2d31';
        ctx.fillRect(0, 0, w, h);
      }
      ctx.drawImage(bitmap, 0, 0, w, h);
      for (const quality of [0.7, 0.4]) {
        const url = canvas.toDataURL(type, quality);
        // A browser that cannot encode `type` answers png: not what was asked, try the next.
        if (url.startsWith(`data:${type};base64,`) && url.length <= MAX_PREVIEW_CHARS) return url;
      }
    }
  }
  return undefined;
}

/** An upload under way: its answer, and a way to stop it. */
export interface Upload {
  done: Promise<ChatFile>;
  abort: () => void;
}

/**
 * Sends `file`'s bytes to `POST /api/channels/:id/files` (the raw body, its type as
 * Content-Type, an image's size in the query and its preview in `X-Preview`); `onProgress` gets
 * the bytes sent so far. Refused: the API's own message.
 */
export function upload(
  channelId: string,
  file: File,
  image: ImageInfo | undefined,
  onProgress: (sent: number) => void,
): Upload {
  const xhr = new XMLHttpRequest();
  const done = new Promise<ChatFile>((resolve, reject) => {
    let query = `name=${encodeURIComponent(file.name || 'pasted-file')}`;
    if (image) query += `&width=${image.width}&height=${image.height}`;
    xhr.open('POST', `/api/channels/${channelId}/files?${query}`);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader('content-type', file.type || 'application/octet-stream');
    if (image?.preview) xhr.setRequestHeader('x-preview', image.preview);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText) as ChatFile);
        } catch {
          reject(
            new ApiError('E_HTTP', 'The peer answered the upload with something unreadable', 0),
          );
        }
      } else reject(errorOf(xhr.status, xhr.statusText, xhr.responseText));
    };
    xhr.onerror = () =>
      reject(new ApiError('E_HTTP', 'The upload was cut off before the peer answered', 0));
    xhr.onabort = () => reject(new ApiError('E_ABORTED', 'Upload cancelled', 0));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

/**
 * Downloads a file's bytes, counting them against its size (`onProgress`), then saves them
 * under its name. The object URL is typed octet-stream: a blob URL has this page's origin, so
 * it must never be something a browser would render (an HTML file would run here).
 */
export async function download(
  f: ChatFile,
  onProgress: (got: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const res = await reach(`${f.url}?download=1`, { signal, headers: authHeaders() });
  if (!res.ok || !res.body) throw errorOf(res.status, res.statusText, await res.text());
  const reader = res.body.getReader();
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.byteLength;
    onProgress(got);
  }
  if (got !== f.size) throw new ApiError('E_HTTP', `Got ${got} of ${f.size} bytes: try again`, 0);
  const href = URL.createObjectURL(new Blob(parts, { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = href;
  a.download = f.name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // The browser has taken the bytes once the click is handled; a minute is plenty.
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}
