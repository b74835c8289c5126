/**
 * The files of a message: images inline (their blurred preview at once, in a box of the right
 * shape so nothing moves, then the image itself), opening full size in a dialog; other files as
 * a card with a Download button that shows its progress.
 */
import { useEffect, useId, useRef, useState } from 'react';
import { useModal } from './useModal.js';
import type { ChatFile } from './api.js';
import { download, humanSize, isInlineImage } from './files.js';
import { useFileState } from './file-events.js';
import { fileIcon } from './Attachments.js';
import { withKey } from './auth.js';

/** The largest box an image takes in the message list (it keeps its shape inside). */
const MAX_W = 400;
const MAX_H = 300;

export function MessageFiles({ files }: { files: ChatFile[] }) {
  return (
    <div className="message-files">
      {files.map((f) =>
        isInlineImage(f) ? <InlineImage key={f.id} f={f} /> : <FileCard key={f.id} f={f} />,
      )}
    </div>
  );
}

/** "Not on this device yet" while this peer does not hold all of it (it fetches on opening). */
function Availability({ f }: { f: ChatFile }) {
  const { state, have } = useFileState(f);
  if (state === 'complete') return null;
  const pct = Math.floor((100 * have) / Math.max(1, f.size));
  return (
    <span className="file-availability">
      {state === 'missing' ? 'Not on this device yet' : `${pct}% on this device`}
    </span>
  );
}

function InlineImage({ f }: { f: ChatFile }) {
  const { width, height, preview } = f.image!;
  const [loaded, setLoaded] = useState(false);
  const [failed, setFailed] = useState(false);
  const [open, setOpen] = useState(false);
  const scale = Math.min(1, MAX_W / width, MAX_H / height);
  // The box has the image's shape before a byte of it arrives: no jump when it does.
  const box = {
    width: `${Math.max(1, Math.round(width * scale))}px`,
    aspectRatio: `${width} / ${height}`,
  };
  return (
    <figure className="inline-image">
      <button
        type="button"
        className={loaded ? 'image-open loaded' : 'image-open'}
        style={box}
        aria-label={`Open ${f.name} full size`}
        title={`${f.name} · ${width}×${height} · ${humanSize(f.size)}`}
        onClick={() => setOpen(true)}
      >
        {preview && !loaded && <img className="image-preview" src={preview} alt="" />}
        {!failed && (
          <img
            className="image-full"
            src={withKey(f.url)}
            alt={f.name}
            width={width}
            height={height}
            decoding="async"
            loading="lazy"
            onLoad={() => setLoaded(true)}
            onError={() => setFailed(true)}
          />
        )}
        {failed && <span className="image-failed">Could not load {f.name}</span>}
      </button>
      {!loaded && !failed && (
        <figcaption>
          <Availability f={f} />
        </figcaption>
      )}
      {open && <ImageViewer f={f} onClose={() => setOpen(false)} />}
    </figure>
  );
}

/** The image at full size in a modal dialog: Escape, the Close button or a click outside closes. */
function ImageViewer({ f, onClose }: { f: ChatFile; onClose: () => void }) {
  const dialog = useModal();
  const title = useId();
  // useModal gives the focus back to the image once the viewer is gone.
  const close = onClose;
  return (
    <dialog
      ref={dialog}
      className="image-viewer"
      aria-labelledby={title}
      onCancel={(e) => {
        e.preventDefault();
        close();
      }}
      onClick={(e) => {
        if (e.target === dialog.current) close(); // the backdrop
      }}
    >
      <div className="viewer-head">
        <h2 id={title}>{f.name}</h2>
        <span className="viewer-size">
          {f.image!.width}×{f.image!.height} · {humanSize(f.size)}
        </span>
        <DownloadButton f={f} />
        <button type="button" autoFocus onClick={close}>
          Close
        </button>
      </div>
      <img className="viewer-image" src={withKey(f.url)} alt={f.name} />
    </dialog>
  );
}

function FileCard({ f }: { f: ChatFile }) {
  return (
    <div className="file-card" role="group" aria-label={`${f.name}, ${humanSize(f.size)}`}>
      <span className="file-icon" aria-hidden="true">
        {fileIcon(f.name)}
      </span>
      <span className="file-meta">
        <span className="file-name" title={f.name}>
          {f.name}
        </span>
        <span className="file-size">
          {humanSize(f.size)} <Availability f={f} />
        </span>
      </span>
      <DownloadButton f={f} />
    </div>
  );
}

/**
 * Download, with its progress (bytes received of the file's size) beside it while it runs, and
 * why it failed. The button stays (pressing it again does nothing) so the focus is not lost.
 */
function DownloadButton({ f }: { f: ChatFile }) {
  const [pct, setPct] = useState<number | null>(null);
  const [error, setError] = useState('');
  const stop = useRef<AbortController | null>(null);
  useEffect(() => () => stop.current?.abort(), []);
  async function go() {
    if (stop.current) return; // already downloading
    const ctl = new AbortController();
    stop.current = ctl;
    setError('');
    setPct(0);
    try {
      await download(f, (got) => setPct(Math.floor((100 * got) / Math.max(1, f.size))), ctl.signal);
    } catch (err) {
      if (!ctl.signal.aborted) setError(err instanceof Error ? err.message : String(err));
    } finally {
      stop.current = null;
      setPct(null);
    }
  }
  return (
    <span className="download">
      <button
        type="button"
        onClick={() => void go()}
        aria-label={`Download ${f.name}`}
        aria-disabled={pct !== null}
      >
        Download
      </button>
      {pct !== null && (
        <progress max={100} value={pct} aria-label={`Downloading ${f.name}`}>
          {pct}%
        </progress>
      )}
      {error && (
        <span className="error" role="alert">
          Download failed: {error}
        </span>
      )}
    </span>
  );
}
