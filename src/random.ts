// The one small seeded PRNG for sampling, demos and tests (mulberry32: 32-bit state, fast, not
// cryptographic). Training uses src/train/rng.ts, whose state is saved in checkpoints.

/** Uniform floats in [0, 1) from a seed; the same seed gives the same stream. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
