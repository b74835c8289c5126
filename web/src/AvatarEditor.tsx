/**
 * "Change avatar": the picked picture in a modal dialog, cropped square (the middle at first;
 * drag it or use the arrow keys to move, the slider or + and - to zoom), shown round as others
 * will see it; Save sends it (README "Avatars") and says why when the peer refuses it.
 */
import { useEffect, useId, useRef, useState, type KeyboardEvent, type PointerEvent } from 'react';
import { useModal } from './useModal.js';
import { api } from './api.js';
import { avatarChanged } from './avatars.js';
import {
  AVATAR_SIDE,
  centreCrop,
  decodePicture,
  drawCrop,
  maxZoom,
  moveCrop,
  renderAvatar,
  zoomCrop,
  type Crop,
} from './avatar-image.js';

/** The picture types offered by the file chooser (SVG never: it can hold script). */
export const PICTURE_TYPES = 'image/png,image/jpeg,image/webp,image/gif,image/avif,image/bmp';

export function AvatarEditor({
  file,
  connected,
  onClose,
}: {
  file: File;
  /** The central server keeps avatars: without it, Save waits (no request that must fail). */
  connected: boolean;
  onClose: () => void;
}) {
  const dialog = useModal();
  const canvas = useRef<HTMLCanvasElement>(null);
  const another = useRef<HTMLInputElement>(null);
  const id = useId();
  const [picked, setPicked] = useState(file);
  const [picture, setPicture] = useState<ImageBitmap | null>(null);
  const [crop, setCrop] = useState<Crop | null>(null);
  const [zoom, setZoom] = useState(1);
  const [error, setError] = useState('');
  const [saving, setSaving] = useState(false);
  const drag = useRef<{ x: number; y: number } | null>(null);

  // Each picked file is decoded once; the bitmap is released when another replaces it.
  useEffect(() => {
    let bitmap: ImageBitmap | null = null;
    let stale = false;
    setPicture(null);
    setError('');
    decodePicture(picked).then(
      (b) => {
        if (stale) return b.close();
        bitmap = b;
        setPicture(b);
        setCrop(centreCrop(b));
        setZoom(1);
      },
      (err: Error) => !stale && setError(err.message),
    );
    return () => {
      stale = true;
      bitmap?.close();
    };
  }, [picked]);

  useEffect(() => {
    if (picture && crop && canvas.current) drawCrop(canvas.current, picture, crop);
  }, [picture, crop]);

  // useModal gives the focus back to "Change avatar" once the editor is gone.
  const close = onClose;

  function zoomTo(z: number) {
    if (!picture || !crop) return;
    const next = Math.min(maxZoom(picture), Math.max(1, z));
    setZoom(next);
    setCrop(zoomCrop(picture, crop, next));
  }

  /** Moves the picture under the square by (dx, dy) of the preview's CSS pixels. */
  function moveBy(dx: number, dy: number) {
    const width = canvas.current?.getBoundingClientRect().width;
    if (!picture || !width) return;
    // Several moves may come before the next render: each applies to the latest square.
    setCrop((c) => c && moveCrop(picture, c, (-dx * c.side) / width, (-dy * c.side) / width));
  }

  function onKey(e: KeyboardEvent) {
    if (!picture || !crop) return;
    const step = (e.shiftKey ? 0.2 : 0.05) * crop.side;
    const moves: Record<string, [number, number]> = {
      ArrowLeft: [-step, 0],
      ArrowRight: [step, 0],
      ArrowUp: [0, -step],
      ArrowDown: [0, step],
    };
    const m = moves[e.key];
    if (m) setCrop((c) => c && moveCrop(picture, c, m[0], m[1]));
    else if (e.key === '+' || e.key === '=') zoomTo(zoom * 1.1);
    else if (e.key === '-') zoomTo(zoom / 1.1);
    else return;
    e.preventDefault();
  }

  async function save() {
    if (!picture || !crop || saving || !connected) return;
    setSaving(true);
    setError('');
    try {
      const info = await api.setAvatar(await renderAvatar(picture, crop));
      avatarChanged(info);
      close();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setSaving(false);
    }
  }

  return (
    <dialog
      ref={dialog}
      className="confirm avatar-editor"
      aria-labelledby={`${id}-title`}
      aria-describedby={`${id}-hint`}
      onCancel={(e) => {
        e.preventDefault();
        close();
      }}
    >
      <h2 id={`${id}-title`}>Change avatar</h2>
      <p className="hint" id={`${id}-hint`}>
        {picked.name}: drag the picture or use the arrow keys to choose the square; zoom with the
        slider, or + and −.
      </p>
      <canvas
        ref={canvas}
        className="avatar-crop"
        width={AVATAR_SIDE}
        height={AVATAR_SIDE}
        role="img"
        aria-label="Your new avatar, as others will see it"
        aria-describedby={`${id}-hint`}
        tabIndex={0}
        autoFocus
        onKeyDown={onKey}
        onPointerDown={(e: PointerEvent<HTMLCanvasElement>) => {
          e.currentTarget.setPointerCapture(e.pointerId);
          drag.current = { x: e.clientX, y: e.clientY };
        }}
        onPointerMove={(e) => {
          const from = drag.current;
          if (!from) return;
          drag.current = { x: e.clientX, y: e.clientY };
          moveBy(e.clientX - from.x, e.clientY - from.y);
        }}
        onPointerUp={() => (drag.current = null)}
        onPointerCancel={() => (drag.current = null)}
      />
      <label className="avatar-zoom">
        Zoom
        <input
          type="range"
          min={1}
          max={picture ? maxZoom(picture) : 1}
          step={0.01}
          value={zoom}
          disabled={!picture}
          onChange={(e) => zoomTo(Number(e.target.value))}
        />
      </label>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {!connected && (
        <p className="hint" role="status">
          Not connected to the central server: you can save your avatar once connected.
        </p>
      )}
      <div className="confirm-buttons">
        <button type="button" className="avatar-another" onClick={() => another.current?.click()}>
          Choose another picture
        </button>
        <button type="button" onClick={close}>
          Cancel
        </button>
        <button
          type="button"
          className="save"
          onClick={() => void save()}
          disabled={!picture || !connected}
          aria-disabled={saving}
        >
          {saving ? 'Saving…' : 'Save'}
        </button>
      </div>
      <input
        ref={another}
        type="file"
        accept={PICTURE_TYPES}
        hidden
        onChange={(e) => {
          const f = e.target.files?.[0];
          if (f) setPicked(f);
          e.target.value = '';
        }}
      />
    </dialog>
  );
}
