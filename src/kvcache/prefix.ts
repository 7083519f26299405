// The prefix index of a paged KV cache (vLLM's automatic prefix caching): every full block of tokens
// a sequence has computed can be found again by the tokens that led to it, so a later prompt with
// the same prefix attaches those blocks instead of computing them again.
//
// An entry is one block position of one prefix: the bs token ids of that block, its parent entry (the
// prefix before it; null for the first block) and its physical blocks, one per layer. Its key is the
// parent's id and the block's tokens, so a lookup compares token ids exactly (no hash collisions),
// and an evicted parent makes its children unreachable (a new parent gets a new id). Entries whose
// blocks no sequence references are evicted least recently used first, children before parents.
//
// Legend: bs block size in tokens, L layers.

export interface PrefixEntry {
  readonly id: number;
  readonly parent: PrefixEntry | null;
  readonly tokens: readonly number[]; // the block's bs token ids
  readonly blocks: readonly number[]; // [L] physical block ids
  readonly depth: number; // block position: 0 for the first block of a prompt
  lastUsed: number;
}

export class PrefixIndex {
  private readonly byKey = new Map<string, PrefixEntry>();
  private readonly children = new Map<number, Set<PrefixEntry>>(); // parent id (-1: roots) → entries
  private readonly byBlock = new Map<number, PrefixEntry>(); // physical block → its entry
  private nextId = 0;
  private clock = 0;

  constructor(readonly blockSize: number) {}

  get size(): number {
    return this.byKey.size;
  }

  /** The entry of the block after `parent` holding exactly `tokens`, if cached. */
  find(parent: PrefixEntry | null, tokens: readonly number[]): PrefixEntry | undefined {
    return this.byKey.get(key(parent, tokens));
  }

  /** The child of `parent` sharing the longest non-empty prefix with `tokens`, and that length. */
  longestPartial(parent: PrefixEntry | null, tokens: readonly number[]): { entry: PrefixEntry; rows: number } | null {
    let best: { entry: PrefixEntry; rows: number } | null = null;
    for (const e of this.children.get(parent?.id ?? -1) ?? []) {
      let n = 0;
      while (n < tokens.length && n < e.tokens.length && e.tokens[n] === tokens[n]) n++;
      if (n > 0 && (!best || n > best.rows)) best = { entry: e, rows: n };
    }
    return best;
  }

  /** Records a computed block; returns the existing entry instead when the same prefix is cached. */
  add(parent: PrefixEntry | null, tokens: readonly number[], blocks: readonly number[]): PrefixEntry {
    const k = key(parent, tokens);
    const had = this.byKey.get(k);
    if (had) return had;
    const e: PrefixEntry = { id: this.nextId++, parent, tokens: [...tokens], blocks: [...blocks], depth: parent ? parent.depth + 1 : 0, lastUsed: ++this.clock };
    this.byKey.set(k, e);
    const pid = parent?.id ?? -1;
    if (!this.children.has(pid)) this.children.set(pid, new Set());
    this.children.get(pid)!.add(e);
    for (const b of blocks) this.byBlock.set(b, e);
    return e;
  }

  touch(entries: readonly PrefixEntry[]): void {
    const t = ++this.clock;
    for (const e of entries) e.lastUsed = t;
  }

  /** Whether a physical block belongs to a cached entry (it then outlives the sequences using it). */
  holds(block: number): boolean {
    return this.byBlock.has(block);
  }

  /**
   * Removes the least recently used entry whose blocks are all unreferenced (`idle`), deepest first
   * on ties, and returns its blocks; null when every entry is in use.
   */
  evict(idle: (block: number) => boolean): readonly number[] | null {
    let victim: PrefixEntry | null = null;
    for (const e of this.byKey.values()) {
      if (!e.blocks.every(idle)) continue;
      if (!victim || e.lastUsed < victim.lastUsed || (e.lastUsed === victim.lastUsed && e.depth > victim.depth)) victim = e;
    }
    if (!victim) return null;
    this.byKey.delete(key(victim.parent, victim.tokens));
    this.children.get(victim.parent?.id ?? -1)?.delete(victim);
    for (const b of victim.blocks) this.byBlock.delete(b);
    return victim.blocks;
  }

  /** Blocks of entries that no sequence references: what eviction could free. */
  idleBlocks(idle: (block: number) => boolean): number {
    let n = 0;
    for (const e of this.byKey.values()) if (e.blocks.every(idle)) n += e.blocks.length;
    return n;
  }
}

function key(parent: PrefixEntry | null, tokens: readonly number[]): string {
  return `${parent?.id ?? -1}:${tokens.join(",")}`;
}
