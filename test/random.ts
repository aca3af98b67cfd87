// Seeded randomness for tests: fresh inputs every run (the seed is printed by each suite so a failure
// can be replayed), one generator instead of a copy per file.

/** xorshift32 (Marsaglia 2003): uniform draws in (0, 1). */
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
}

/** Standard normal draws from a uniform source (Box-Muller). */
export function gaussian(uniform: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** A seed that differs per run and per process. */
export const freshSeed = (): number => (Date.now() ^ (process.pid << 8)) >>> 0;
