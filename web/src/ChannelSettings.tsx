/**
 * What one does to the open channel from its header (issue 13 item 7): its owner edits the
 * name, topic and visitor setting, or deletes it; a member leaves it. Each asks the local API,
 * which signs the change and replicates it; the `channel` event brings the new state back.
 */
import { useId, useState } from 'react';
import { useModal } from './useModal.js';
import { api, ApiError, type Channel, type Me } from './api.js';
import { Confirm } from './Confirm.js';
import './channel.css';

export function ChannelActions({
  me,
  channel,
  onGone,
  onLeaving,
}: {
  me: Me;
  channel: Channel;
  /** The channel left this user's list (left or deleted). */
  onGone: () => void;
  /**
   * True from the moment the user confirms leaving or deleting (the view asks nothing more of
   * the channel: once the peer has taken it out, it would be refused), false if that failed.
   */
  onLeaving: (leaving: boolean) => void;
}) {
  const [editing, setEditing] = useState(false);
  const [asking, setAsking] = useState<'leave' | 'delete' | null>(null);
  const [error, setError] = useState('');
  const owner = channel.owner === me.username;
  if (me.role !== 'user') return null;

  async function act(f: () => Promise<unknown>, after?: () => void, failed?: () => void) {
    try {
      setError('');
      await f();
      after?.();
    } catch (err) {
      failed?.();
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }

  /** Leaves or deletes the channel: nothing more is asked of it meanwhile. */
  function go(f: () => Promise<unknown>) {
    onLeaving(true);
    void act(f, onGone, () => onLeaving(false));
  }

  return (
    <div className="channel-actions">
      {owner ? (
        <button type="button" className="link" onClick={() => setEditing(true)}>
          Channel settings
        </button>
      ) : (
        <button type="button" className="link" onClick={() => setAsking('leave')}>
          Leave channel
        </button>
      )}
      {error && (
        <span className="error" role="alert">
          {error}
        </span>
      )}
      {editing && (
        <SettingsDialog
          channel={channel}
          onClose={() => setEditing(false)}
          onSave={(change) =>
            act(
              () => api.updateChannel(channel.id, change),
              () => setEditing(false),
            )
          }
          onDelete={() => {
            setEditing(false);
            setAsking('delete');
          }}
        />
      )}
      {asking === 'leave' && (
        <Confirm
          title={`Leave #${channel.name}`}
          text={`Leave #${channel.name}? You stop receiving its messages; you can join it again from Home.`}
          action="Leave"
          onAnswer={(yes) => {
            setAsking(null);
            if (yes) go(() => api.leave(channel.id));
          }}
        />
      )}
      {asking === 'delete' && (
        <Confirm
          title={`Delete #${channel.name}`}
          text={`Delete #${channel.name} and every message in it, for everyone? This cannot be undone.`}
          action="Delete channel"
          onAnswer={(yes) => {
            setAsking(null);
            if (yes) go(() => api.deleteChannel(channel.id));
          }}
        />
      )}
    </div>
  );
}

function SettingsDialog({
  channel,
  onClose,
  onSave,
  onDelete,
}: {
  channel: Channel;
  onClose: () => void;
  onSave: (change: { name?: string; topic?: string; allowVisitors?: boolean }) => void;
  onDelete: () => void;
}) {
  const dialog = useModal();
  const id = useId();
  const [name, setName] = useState(channel.name);
  const [topic, setTopic] = useState(channel.topic ?? '');
  const [visitors, setVisitors] = useState(channel.allowVisitors);
  return (
    <dialog
      ref={dialog}
      className="confirm settings"
      aria-labelledby={`${id}-title`}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const change: { name?: string; topic?: string; allowVisitors?: boolean } = {};
          if (name.trim() !== channel.name) change.name = name.trim();
          if (topic !== (channel.topic ?? '')) change.topic = topic;
          if (visitors !== channel.allowVisitors) change.allowVisitors = visitors;
          if (Object.keys(change).length === 0) return onClose();
          onSave(change);
        }}
      >
        <h2 id={`${id}-title`}>Channel settings</h2>
        <label htmlFor={`${id}-name`}>Name</label>
        <input
          id={`${id}-name`}
          value={name}
          maxLength={64}
          required
          onChange={(e) => setName(e.target.value)}
        />
        <label htmlFor={`${id}-topic`}>Topic</label>
        <input
          id={`${id}-topic`}
          value={topic}
          maxLength={256}
          onChange={(e) => setTopic(e.target.value)}
        />
        <label className="check">
          <input
            type="checkbox"
            checked={visitors}
            onChange={(e) => setVisitors(e.target.checked)}
          />
          Visitors may read this channel
        </label>
        <div className="confirm-buttons">
          <button type="button" className="danger" onClick={onDelete}>
            Delete channel
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit">Save</button>
        </div>
      </form>
    </dialog>
  );
}
