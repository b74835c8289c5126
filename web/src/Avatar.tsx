/**
 * A user's avatar, round: their picture when they set one, else initials on their colour. It is
 * decorative (the name is always written beside it), so it says nothing to a screen reader. No
 * inline style: its size and colour are classes (avatars.css).
 */
import { useState } from 'react';
import { avatarUrl, defaultAvatar, useAvatar } from './avatars.js';
import './avatars.css';

export function Avatar({
  username,
  size,
  className = '',
}: {
  username: string;
  /** Its side in CSS pixels: one of the sizes avatars.css draws. */
  size: 28 | 32 | 40;
  className?: string;
}) {
  const a = useAvatar(username);
  // A picture that did not load (changed again meanwhile, or the peer went away): the default.
  const [broken, setBroken] = useState<string | null>(null);
  if (a && broken !== a.hash) {
    return (
      <img
        className={`avatar avatar-${size} ${className}`}
        src={avatarUrl(username, a.hash)}
        alt=""
        width={size}
        height={size}
        decoding="async"
        onError={() => setBroken(a.hash)}
      />
    );
  }
  const d = defaultAvatar(username);
  return (
    <span
      className={`avatar avatar-${size} avatar-default avatar-c${d.colour} ${className}`}
      data-initials={d.initials}
      aria-hidden="true"
    />
  );
}
