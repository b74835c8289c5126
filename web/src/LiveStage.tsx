/**
 * Livestreams in a channel: Go Live (camera and microphone from this page), the streams live
 * here with a Watch button, your own preview while you are live, and the viewer tile with sound
 * and a stats overlay (fps, bitrate, loss, latency). The chat stays beside it.
 */
import { useEffect, useRef, useState } from 'react';
import { api, ApiError, type Channel, type Me, type Stream, type ViewerStats } from './api.js';
import { broadcast, captureMedia, play, type Broadcast, type PlaybackCounters } from './media.js';
import { useStall, type Stall } from './stall.js';

export function LiveStage({
  me,
  channel,
  streams,
  onChanged,
}: {
  me: Me;
  channel: Channel;
  streams: Stream[];
  onChanged: () => void;
}) {
  const [mine, setMine] = useState<{ streamId: string; bc: Broadcast } | null>(null);
  const [watching, setWatching] = useState<{ streamId: string; audio: AudioContext } | null>(null);
  /** The watched stream sends no frames (its tile says so), or stopped doing so until it ended. */
  const [stalled, setStalled] = useState(false);
  const [silent, setSilent] = useState<ReadonlySet<string>>(new Set());
  const [error, setError] = useState<string | null>(null);
  const preview = useRef<HTMLVideoElement>(null);
  const here = streams.filter((s) => s.channelId === channel.id);
  const others = here.filter((s) => !s.mine);
  const myStream = here.find((s) => s.streamId === mine?.streamId);
  // Ours but not from this page: RTP ingest, or another tab. Shown with an End button, and
  // while any is live here "Go live" would start a second stream, so it is not offered.
  const [starting, setStarting] = useState<string | null>(null);
  const ownElsewhere = here.filter(
    (s) => s.mine && s.streamId !== mine?.streamId && s.streamId !== starting,
  );

  // Leaving the channel (or the page) ends what this stage started.
  const live = useRef({ mine, watching });
  live.current = { mine, watching };
  useEffect(
    () => () => {
      const { mine: m, watching: w } = live.current;
      if (m) {
        m.bc.stop();
        void api.endStream(m.streamId).catch(() => undefined);
      }
      if (w) {
        void api.unwatch(w.streamId).catch(() => undefined);
        void w.audio.close();
      }
    },
    [],
  );

  useEffect(() => {
    if (preview.current && mine) preview.current.srcObject = mine.bc.preview;
  }, [mine]);

  // The stream we watch ended: close the tile.
  useEffect(() => {
    if (watching && !here.some((s) => s.streamId === watching.streamId)) {
      void watching.audio.close();
      setWatching(null);
    }
  }, [here, watching]);

  async function goLive() {
    setError(null);
    let streamId: string | undefined;
    let media: MediaStream | undefined;
    try {
      // The camera first: without one no stream is announced to anyone.
      media = await captureMedia({ fps: 30 });
      streamId = (await api.goLive(channel.id, 30, 800)).streamId;
      setStarting(streamId);
      const bc = await broadcast(streamId, media, { fps: 30, bitrateKbps: 800 }, (m) =>
        setError(m),
      );
      setMine({ streamId, bc });
    } catch (err) {
      setError(err instanceof ApiError || err instanceof Error ? err.message : String(err));
      for (const t of media?.getTracks() ?? []) t.stop();
      if (streamId) void api.endStream(streamId).catch(() => undefined);
    }
    setStarting(null);
    onChanged();
  }

  async function endLive() {
    if (!mine) return;
    setMine(null);
    // The peer ends the stream for every viewer and closes the page's media socket.
    await api.endStream(mine.streamId).catch(() => undefined);
    mine.bc.stop();
    onChanged();
  }

  async function watch(s: Stream) {
    setError(null);
    setStalled(false);
    setSilent((old) => {
      const next = new Set(old);
      next.delete(s.streamId);
      return next;
    });
    // Created in the click, so the browser lets it play sound.
    const audio = new AudioContext();
    try {
      if (watching) await stopWatching();
      await api.watch(s.streamId, s.streamer);
      setWatching({ streamId: s.streamId, audio });
    } catch (err) {
      void audio.close();
      setError(err instanceof Error ? err.message : String(err));
    }
    onChanged();
  }

  async function stopWatching() {
    if (!watching) return;
    setWatching(null);
    void watching.audio.close();
    await api.unwatch(watching.streamId).catch(() => undefined);
    onChanged();
  }

  async function endOwn(s: Stream) {
    await api.endStream(s.streamId).catch((err) => setError(String(err)));
    onChanged();
  }

  if (here.length === 0 && !mine && me.role !== 'user' && !error) return null;
  return (
    <section className="stage" aria-label="Live">
      <div className="stage-bar">
        {me.role === 'user' &&
          ownElsewhere.length === 0 &&
          (mine ? (
            <button className="live-button on" onClick={() => void endLive()}>
              End stream
            </button>
          ) : (
            <button className="live-button" onClick={() => void goLive()}>
              Go live
            </button>
          ))}
        {mine && (
          <span className="live-badge" aria-label="You are live">
            LIVE · {myStream?.viewers ?? 0} watching
          </span>
        )}
        {ownElsewhere.map((s) => (
          <span key={s.streamId} className="stream-entry">
            <span className="live-badge" aria-label="You are live">
              LIVE · {s.viewers} watching
            </span>{' '}
            your {s.source === 'rtp' ? 'RTP ingest' : s.source} stream{' '}
            <button
              className="live-button on"
              onClick={() => void endOwn(s)}
              aria-label={`End stream (${s.source})`}
            >
              End stream
            </button>
          </span>
        ))}
        {others.map((s) => (
          <span key={s.streamId} className="stream-entry">
            {silent.has(s.streamId) ? (
              <span className="live-badge off">ENDED</span>
            ) : watching?.streamId === s.streamId && stalled ? (
              <span className="live-badge off">INTERRUPTED</span>
            ) : (
              <span className="live-badge">LIVE</span>
            )}{' '}
            {s.streamer} · {s.viewers} watching{' '}
            {watching?.streamId === s.streamId ? (
              <button className="watch" onClick={() => void stopWatching()}>
                Stop watching
              </button>
            ) : (
              <button className="watch" onClick={() => void watch(s)}>
                {silent.has(s.streamId) ? 'Try again' : 'Watch'}{' '}
                <span className="sr-only">{s.streamer}</span>
              </button>
            )}
          </span>
        ))}
        {error && (
          <span className="stage-error" role="alert">
            {error}
          </span>
        )}
      </div>
      {mine && (
        <video
          className="preview"
          ref={preview}
          muted
          autoPlay
          playsInline
          aria-label="Your camera"
        />
      )}
      {watching && (
        <ViewerTile
          key={watching.streamId}
          streamId={watching.streamId}
          streamer={others.find((s) => s.streamId === watching.streamId)?.streamer ?? ''}
          audio={watching.audio}
          onStall={setStalled}
          onEnded={() => {
            const id = watching.streamId;
            setSilent((old) => new Set(old).add(id));
            void stopWatching().then(() =>
              setError('The stream ended: no video came for a while.'),
            );
          }}
        />
      )}
    </section>
  );
}

function ViewerTile({
  streamId,
  streamer,
  audio,
  onStall,
  onEnded,
}: {
  streamId: string;
  streamer: string;
  audio: AudioContext;
  onStall: (stalled: boolean) => void;
  onEnded: () => void;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const counters = useRef<PlaybackCounters>({
    framesDrawn: 0,
    audioFrames: 0,
    decodeErrors: 0,
    framesSkipped: 0,
  });
  const [stats, setStats] = useState<ViewerStats | null>(null);
  const [drawn, setDrawn] = useState({ frames: 0, audio: 0, skipped: 0 });

  useEffect(() => {
    if (!canvas.current) return;
    return play(streamId, canvas.current, counters.current, audio, setStats);
  }, [streamId, audio]);

  useEffect(() => {
    const t = setInterval(
      () =>
        setDrawn({
          frames: counters.current.framesDrawn,
          audio: counters.current.audioFrames,
          skipped: counters.current.framesSkipped,
        }),
      1000,
    );
    return () => clearInterval(t);
  }, [streamId]);

  const stall = useStall(drawn.frames, onEnded);
  const interrupted = stall.state === 'interrupted';
  useEffect(() => onStall(interrupted), [interrupted, onStall]);
  const lost = stats ? stats.packetsLost : 0;
  return (
    <figure
      className="viewer-tile"
      aria-label={`${streamer}'s stream`}
      data-frames-drawn={drawn.frames}
      data-audio-frames={drawn.audio}
      data-frames-skipped={drawn.skipped}
      data-stall={stall.state}
    >
      <canvas ref={canvas} width={640} height={360} />
      {stall.state !== 'playing' && <StallNotice stall={stall} />}
      <figcaption className="overlay" aria-label="Stream stats">
        {stats
          ? `${stats.fps} fps · ${stats.bitrateKbps} kbit/s · lost ${lost} (recovered ${stats.packetsRecovered}) · latency p50 ${stats.latencyMs.p50 ?? '–'} ms p99 ${stats.latencyMs.p99 ?? '–'} ms · via ${stats.parent}`
          : 'connecting…'}
      </figcaption>
    </figure>
  );
}

/** Over a frozen frame: the source stopped sending, for how long. */
function StallNotice({ stall }: { stall: Stall }) {
  return (
    <p className="stall" role="status">
      {stall.state === 'waiting'
        ? 'Waiting for video…'
        : `Interrupted: no video for ${Math.round(stall.forMs / 1000)} s`}
    </p>
  );
}
