// Recent completions, so typing does not always cost an engine request. No 'vscode' import.
//
// Two lookups:
//  - exact: the same prefix/suffix windows (the same prompt) as a recent request → its candidates;
//  - typing-through: the user typed characters that match the start of a shown candidate. The new
//    prefix is an old prefix plus those characters, so the candidates that start with them continue
//    with their rest, at once, with no request.
// A small LRU (Map keeps insertion order; a hit moves the entry to the end).

export interface CachedCandidate { text: string; score: number; count: number }

interface Entry { prefix: string; suffix: string; candidates: CachedCandidate[] }

export interface CacheHit {
  candidates: CachedCandidate[];
  /** Characters typed since the cached request (0 for an exact hit). */
  typed: number;
}

export class CompletionCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly capacity = 64) {}

  get size(): number { return this.entries.size; }

  put(prefix: string, suffix: string, candidates: CachedCandidate[]): void {
    const key = keyOf(prefix, suffix);
    this.entries.delete(key);
    this.entries.set(key, { prefix, suffix, candidates: candidates.filter((c) => c.text.length > 0) });
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Candidates for the cursor at (prefix, suffix), or undefined when a request is needed. */
  get(prefix: string, suffix: string): CacheHit | undefined {
    const exact = this.entries.get(keyOf(prefix, suffix));
    if (exact && exact.candidates.length) {
      this.touch(prefix, suffix, exact);
      return { candidates: exact.candidates, typed: 0 };
    }
    // Newest first: the most recent request is the one the user is typing through.
    const all = [...this.entries.values()].reverse();
    for (const e of all) {
      if (prefix.length <= e.prefix.length || !prefix.startsWith(e.prefix)) continue;
      if (!sameSuffix(e.suffix, suffix)) continue;
      const typed = prefix.slice(e.prefix.length);
      const rest = e.candidates
        .filter((c) => c.text.length > typed.length && c.text.startsWith(typed))
        .map((c) => ({ ...c, text: c.text.slice(typed.length) }))
        .filter((c) => c.text.trim() !== '');
      if (rest.length) return { candidates: rest, typed: typed.length };
    }
    return undefined;
  }

  clear(): void { this.entries.clear(); }

  private touch(prefix: string, suffix: string, e: Entry) {
    const key = keyOf(prefix, suffix);
    this.entries.delete(key);
    this.entries.set(key, e);
  }
}

function keyOf(prefix: string, suffix: string): string {
  return prefix + '\u0000' + suffix;
}

/** While typing through, an editor may auto-close a bracket or quote: the suffix then gains that one
 *  character at its start. Such a suffix still counts as the same. */
function sameSuffix(old: string, now: string): boolean {
  if (old === now) return true;
  return now.length === old.length + 1 && now.endsWith(old) && /^[)\]}"'`]/.test(now);
}
