/**
 * Files being attached to the next message: picked with the attach button, dropped on the
 * channel or pasted into the composer. Each uploads at once and shows as a chip with its
 * progress; it can be removed before sending, and one that failed says why.
 */
import { useCallback, useEffect, useRef, useState, type DragEvent } from 'react';
import { ApiError, type ChatFile } from './api.js';
import { humanSize, imageInfo, MAX_FILES, upload, type ImageInfo } from './files.js';

/** One file on its way to the channel. */
export interface Attachment {
  key: number;
  name: string;
  size: number;
  /** Bytes sent so far. */
  sent: number;
  state: 'preparing' | 'uploading' | 'done' | 'failed';
  image?: ImageInfo;
  error?: string;
  file?: ChatFile;
}

/** The attachments of the composer of one channel, and what can be done with them. */
export interface Attachments {
  items: Attachment[];
  /** Why some files were not taken (too many). */
  notice: string;
  add: (files: readonly File[]) => void;
  remove: (key: number) => void;
  /** After sending: the sent ones go (by file id; any attached meanwhile stay). */
  clear: (sent: readonly string[]) => void;
  /** The ids to send, once every attachment is uploaded (none while one is not). */
  ready: string[] | null;
}

let nextKey = 1;

export function useAttachments(channelId: string): Attachments {
  const [items, setItems] = useState<Attachment[]>([]);
  const [notice, setNotice] = useState('');
  const aborts = useRef(new Map<number, () => void>());
  const count = useRef(0);
  count.current = items.length;

  const change = useCallback((key: number, c: Partial<Attachment>) => {
    setItems((list) => list.map((a) => (a.key === key ? { ...a, ...c } : a)));
  }, []);

  const start = useCallback(
    async (key: number, file: File) => {
      const image = await imageInfo(file);
      if (!aborts.current.has(key)) return; // removed meanwhile
      change(key, { state: 'uploading', image });
      const up = upload(channelId, file, image, (sent) => change(key, { sent }));
      aborts.current.set(key, up.abort);
      try {
        const f = await up.done;
        change(key, { state: 'done', sent: file.size, file: f });
      } catch (err) {
        if (err instanceof ApiError && err.code === 'E_ABORTED') return;
        change(key, { state: 'failed', error: err instanceof Error ? err.message : String(err) });
      } finally {
        if (aborts.current.has(key)) aborts.current.set(key, () => undefined);
      }
    },
    [channelId, change],
  );

  const add = useCallback(
    (files: readonly File[]) => {
      const room = MAX_FILES - count.current;
      setNotice(
        files.length > room
          ? `A message carries at most ${MAX_FILES} files: the rest were left out.`
          : '',
      );
      const taken = files.slice(0, Math.max(0, room)).map((file) => ({ key: nextKey++, file }));
      count.current += taken.length;
      setItems((list) => [
        ...list,
        ...taken.map(({ key, file }): Attachment => ({
          key,
          name: file.name || 'pasted-file',
          size: file.size,
          sent: 0,
          state: 'preparing',
        })),
      ]);
      for (const { key, file } of taken) {
        aborts.current.set(key, () => undefined);
        void start(key, file);
      }
    },
    [start],
  );

  const remove = useCallback((key: number) => {
    aborts.current.get(key)?.();
    aborts.current.delete(key);
    setItems((list) => list.filter((a) => a.key !== key));
    setNotice('');
  }, []);

  const clear = useCallback((sent: readonly string[]) => {
    setItems((list) => list.filter((a) => !a.file || !sent.includes(a.file.id)));
  }, []);

  // Leaving the channel stops what is still uploading.
  useEffect(() => {
    const running = aborts.current;
    return () => {
      for (const abort of running.values()) abort();
      running.clear();
    };
  }, []);

  const ready = items.every((a) => a.state === 'done') ? items.map((a) => a.file!.id) : null;
  return { items, notice, add, remove, clear, ready };
}

/** The attach button: a file picker behind a button with a name. */
export function AttachButton({
  onFiles,
  disabled,
}: {
  onFiles: (files: File[]) => void;
  disabled: boolean;
}) {
  const input = useRef<HTMLInputElement>(null);
  return (
    <>
      <button
        type="button"
        className="attach"
        aria-label="Attach files"
        title="Attach files"
        disabled={disabled}
        onClick={() => input.current?.click()}
      >
        +
      </button>
      <input
        ref={input}
        type="file"
        multiple
        hidden
        onChange={(e) => {
          onFiles([...(e.target.files ?? [])]);
          e.target.value = ''; // the same file can be picked again
        }}
      />
    </>
  );
}

/** The chips above the composer: name, size, progress, why it failed, and Remove. */
export function AttachmentChips({ attachments }: { attachments: Attachments }) {
  const { items, notice, remove } = attachments;
  if (items.length === 0 && !notice) return null;
  return (
    <div className="attachments">
      {notice && (
        <p className="error" role="alert">
          {notice}
        </p>
      )}
      {items.length > 0 && (
        <ul aria-label="Attachments">
          {items.map((a) => (
            <li key={a.key} className={`chip ${a.state}`} aria-label={`${a.name}, ${status(a)}`}>
              {a.image?.preview ? (
                <img className="chip-thumb" src={a.image.preview} alt="" />
              ) : (
                <span className="chip-icon" aria-hidden="true">
                  {fileIcon(a.name)}
                </span>
              )}
              <span className="chip-body">
                <span className="chip-name" title={a.name}>
                  {a.name}
                </span>
                <span className="chip-size">
                  {humanSize(a.size)}
                  {a.state === 'done' && ' · uploaded'}
                </span>
                {(a.state === 'uploading' || a.state === 'preparing') && (
                  <progress
                    max={Math.max(1, a.size)}
                    value={a.sent}
                    aria-label={`Uploading ${a.name}`}
                  />
                )}
                {a.state === 'failed' && (
                  <span className="chip-error" role="alert">
                    Not sent: {a.error}
                  </span>
                )}
              </span>
              <button
                type="button"
                className="chip-remove"
                aria-label={`Remove ${a.name}`}
                title="Remove"
                onClick={() => remove(a.key)}
              >
                ✕
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function status(a: Attachment): string {
  switch (a.state) {
    case 'preparing':
      return 'preparing';
    case 'uploading':
      return `uploading, ${Math.floor((100 * a.sent) / Math.max(1, a.size))}%`;
    case 'done':
      return 'ready to send';
    case 'failed':
      return 'failed';
  }
}

/** A glyph for a file by its name's extension (decorative: the name says it). */
export function fileIcon(name: string): string {
  const ext = name.toLowerCase().split('.').pop() ?? '';
  if (['png', 'jpg', 'jpeg', 'gif', 'webp', 'svg', 'bmp', 'avif'].includes(ext)) return '🖼';
  if (['mp3', 'wav', 'ogg', 'flac', 'm4a'].includes(ext)) return '🎵';
  if (['mp4', 'webm', 'mkv', 'mov', 'avi'].includes(ext)) return '🎞';
  if (['zip', 'gz', 'tgz', 'xz', '7z', 'rar', 'tar'].includes(ext)) return '🗜';
  if (['pdf', 'doc', 'docx', 'odt', 'txt', 'md', 'rtf'].includes(ext)) return '📄';
  return '📎';
}

/**
 * Dropping files on the channel: `dragging` while files are held over it (counted, since
 * entering a child leaves the parent), and the handlers to put on its element.
 */
export function useDropZone(onFiles: (files: File[]) => void, enabled: boolean) {
  const [dragging, setDragging] = useState(false);
  const depth = useRef(0);
  const hasFiles = (e: DragEvent) => enabled && [...e.dataTransfer.types].includes('Files');
  return {
    dragging,
    handlers: {
      onDragEnter(e: DragEvent) {
        if (!hasFiles(e)) return;
        e.preventDefault();
        depth.current++;
        setDragging(true);
      },
      onDragOver(e: DragEvent) {
        if (!hasFiles(e)) return;
        e.preventDefault(); // allows the drop
        e.dataTransfer.dropEffect = 'copy';
      },
      onDragLeave(e: DragEvent) {
        if (!hasFiles(e)) return;
        depth.current = Math.max(0, depth.current - 1);
        if (depth.current === 0) setDragging(false);
      },
      onDrop(e: DragEvent) {
        if (!hasFiles(e)) return;
        e.preventDefault();
        depth.current = 0;
        setDragging(false);
        onFiles([...e.dataTransfer.files]);
      },
    },
  };
}
