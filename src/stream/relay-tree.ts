/**
 * The relay tree of one live stream (multi-peer seeding, SPEC §8): the streamer is the root and
 * feeds at most k viewers; every later viewer hangs under the shallowest viewer with a free slot,
 * and relays forward to at most k children. When a relay leaves, its children (with their own
 * subtrees) are placed again the same way; a viewer that reports its relay silent is moved alone,
 * and a relay that enough of its children report is marked leaf-only and loses its children. The streamer's upload is then about k times the bitrate whatever the audience, and
 * the depth grows as log_k of it. Pure logic: the streamer's peer applies the moves.
 */

/** The root's id: the streamer itself. */
export const ROOT = '';

/** A placement: `id` now receives from `parent` (ROOT for the streamer). */
export interface Placement {
  id: string;
  parent: string;
}

export class RelayTree {
  private readonly parents = new Map<string, string>();
  private readonly kids = new Map<string, Set<string>>([[ROOT, new Set()]]);
  /** Viewers that stalled as relays: they keep watching but feed nobody. */
  private readonly leafOnly = new Set<string>();
  /** Hidden viewers: direct leaves of the root, outside its k slots, never relays. */
  private readonly hidden = new Set<string>();

  constructor(readonly k: number) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError('k must be a positive integer');
  }

  get size(): number {
    return this.parents.size;
  }

  has(id: string): boolean {
    return this.parents.has(id);
  }

  parentOf(id: string): string | undefined {
    return this.parents.get(id);
  }

  childrenOf(id: string): string[] {
    return [...(this.kids.get(id) ?? [])];
  }

  /**
   * Adds a viewer that must never be named to another viewer (an invisible user): it hangs
   * directly under the root, beyond the root's k slots, and never relays. Returns ROOT.
   */
  addHidden(id: string): string {
    if (id === ROOT || this.parents.has(id)) throw new RangeError(`viewer ${id} is already placed`);
    this.hidden.add(id);
    this.leafOnly.add(id);
    this.attach(id, ROOT);
    this.kids.set(id, new Set());
    return ROOT;
  }

  /** True for a viewer added with addHidden. */
  isHidden(id: string): boolean {
    return this.hidden.has(id);
  }

  /** Depth of a viewer: 1 for a direct child of the streamer. */
  depthOf(id: string): number {
    let d = 0;
    for (let n: string | undefined = id; n !== undefined && n !== ROOT; n = this.parents.get(n))
      d++;
    return d;
  }

  /** Adds a viewer; returns its parent. */
  add(id: string): string {
    if (id === ROOT || this.parents.has(id)) throw new RangeError(`viewer ${id} is already placed`);
    const parent = this.slot(new Set());
    this.attach(id, parent);
    this.kids.set(id, new Set());
    return parent;
  }

  /** Removes a viewer; its children are placed again (each with its subtree). */
  remove(id: string): Placement[] {
    const parent = this.parents.get(id);
    if (parent === undefined) return [];
    this.kids.get(parent)?.delete(id);
    this.parents.delete(id);
    this.leafOnly.delete(id);
    this.hidden.delete(id);
    const orphans = [...(this.kids.get(id) ?? [])];
    this.kids.delete(id);
    const moves: Placement[] = [];
    for (const o of orphans) {
      this.parents.delete(o);
      const p = this.slot(this.subtree(o));
      this.attach(o, p);
      moves.push({ id: o, parent: p });
    }
    return moves;
  }

  /**
   * Moves one viewer (with its subtree) away from its parent: to the shallowest free slot
   * outside the old parent's subtree. Its parent keeps its other children. Returns the new
   * parent, or undefined when the viewer is not placed or is fed by the streamer itself.
   */
  move(id: string): string | undefined {
    const parent = this.parents.get(id);
    if (parent === undefined || parent === ROOT) return undefined;
    this.kids.get(parent)!.delete(id);
    this.parents.delete(id);
    const exclude = this.subtree(id);
    for (const n of this.subtree(parent)) exclude.add(n);
    const p = this.slot(exclude);
    this.attach(id, p);
    return p;
  }

  /**
   * A viewer's parent stopped sending (enough of its children said so): the parent is marked leaf-only and every child of that parent is
   * moved (with its subtree) elsewhere. Returns the moves, the stalled viewer's first.
   */
  stalled(id: string): Placement[] {
    const parent = this.parents.get(id);
    if (parent === undefined || parent === ROOT) return [];
    this.leafOnly.add(parent);
    const moves: Placement[] = [];
    for (const c of [id, ...this.childrenOf(parent).filter((c) => c !== id)]) {
      this.kids.get(parent)!.delete(c);
      this.parents.delete(c);
      const p = this.slot(this.subtree(c));
      this.attach(c, p);
      moves.push({ id: c, parent: p });
    }
    return moves;
  }

  /** Every viewer with its parent, parents before children (breadth first). */
  placements(): Placement[] {
    const out: Placement[] = [];
    const queue = [ROOT];
    for (let i = 0; i < queue.length; i++) {
      for (const c of this.kids.get(queue[i]!) ?? []) {
        out.push({ id: c, parent: queue[i]! });
        queue.push(c);
      }
    }
    return out;
  }

  private attach(id: string, parent: string): void {
    this.parents.set(id, parent);
    this.kids.get(parent)!.add(id);
  }

  /** The shallowest node with a free slot, outside `exclude` (breadth first from the root). */
  private slot(exclude: Set<string>): string {
    const queue = [ROOT];
    for (let i = 0; i < queue.length; i++) {
      const n = queue[i]!;
      const kids = this.kids.get(n)!;
      const used = n === ROOT ? kids.size - this.hidden.size : kids.size;
      if (used < this.k && !this.leafOnly.has(n)) return n;
      for (const c of kids) if (!exclude.has(c) && !this.hidden.has(c)) queue.push(c);
    }
    // Every node is full or leaf-only: give the root one more child rather than refuse a viewer.
    return ROOT;
  }

  private subtree(id: string): Set<string> {
    const out = new Set([id]);
    const queue = [id];
    for (let i = 0; i < queue.length; i++)
      for (const c of this.kids.get(queue[i]!) ?? []) {
        out.add(c);
        queue.push(c);
      }
    return out;
  }
}
