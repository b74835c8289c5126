/**
 * Shown where a channel was open when it left this account's list without the user leaving or
 * deleting it here: its owner removed the user, or deleted it (on any device, while this page
 * was open). Before, the pane went blank ("Pick a channel.") and nothing said why.
 */
import type { Channel } from './api.js';

export function ChannelGone({ channel, onClose }: { channel: Channel; onClose: () => void }) {
  return (
    <div className="empty">
      <p role="status">
        You can no longer read <strong>#{channel.name}</strong>: its owner removed you from it, or
        deleted it. It is gone from your channels.
      </p>
      <button type="button" className="primary" onClick={onClose}>
        Close
      </button>
    </div>
  );
}
