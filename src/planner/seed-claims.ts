// The seed article's claims, each checked against the planner (issue 17). Pure. Every claim holds the seed's words
// and what they assert as a predicate on planner numbers; the verdict and the numbers beside it are computed here,
// so docs/seed-tables.md changes when the planner does. The claims are the ones quoted in shared/REFERENCE.md ("The
// seed article's arithmetic, checked") and issue 17.
import { kvBytesPerToken, kvCacheBytes } from "../kvcache/bytes.js";
import type { ModelSpec } from "../config/types.js";
import { withKvHeads } from "../config/variant.js";
import { plan } from "./plan.js";

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

export function bin(bytes: number): string {
  if (bytes >= GiB) return `${+(bytes / GiB).toFixed(3)} GiB`;
  if (bytes >= MiB) return `${+(bytes / MiB).toFixed(3)} MiB`;
  if (bytes >= KiB) return `${+(bytes / KiB).toFixed(3)} KiB`;
  return `${bytes} B`;
}
const n = (x: number) => x.toLocaleString("en-US");
const k = (tokens: number) => (tokens >= 1024 ? `${tokens / 1024}K` : String(tokens));

export interface SeedClaim {
  id: string; // e.g. "mha-batch-16k"; tables look claims up by their cell key
  cell: string; // the table cell it belongs beside, e.g. "s2:MHA@4096" or "s6:MHA@16384"
  quote: string; // the seed's words
  planner: string; // the planner's number(s), computed
  where: string; // which table / heatmap cell shows it
  contradicted: boolean;
  verdict: string; // short text for the "seed said" column, computed
}

export interface ClaimContext {
  seven: ModelSpec; // the 7B MHA shape (Llama-2-7B)
  seventy: ModelSpec; // the 70B MHA shape (80 layers × 64 heads)
  gpu: string; // the heatmap's GPU, e.g. "a100-80gb"
}

/** Exact max batch (the planner's maxBatch) for `spec` with `kvHeads` KV heads at each context, on `gpu`. */
export function exactMaxBatch(spec: ModelSpec, kvHeads: number, contexts: number[], gpu: string): Map<number, number> {
  return new Map(contexts.map((context) => {
    const r = plan(spec, { gpu, context, kvHeads: [kvHeads] });
    return [context, r.variants[0].maxBatch];
  }));
}

/** The seed's statement that a cache is "X GB": wrong when the planner's bytes are not within 10 % of X GiB. */
function cacheClaim(o: { id: string; cell: string; quote: string; spec: ModelSpec; kvHeads: number; tokens: number; seedGiB: number; where: string }): SeedClaim {
  const s = o.kvHeads === o.spec.numKvHeads ? o.spec : withKvHeads(o.spec, o.kvHeads);
  const bytes = kvCacheBytes(s, { tokens: o.tokens, dtype: "f16" });
  const ratio = bytes / (o.seedGiB * GiB);
  const contradicted = Math.abs(ratio - 1) > 0.1;
  const why = ratio === 2 ? " (the factor 2 for K and V seems dropped)" : "";
  return {
    id: o.id,
    cell: o.cell,
    quote: o.quote,
    planner: `${bin(bytes)} (${n(bytes)} bytes)`,
    where: o.where,
    contradicted,
    verdict: contradicted ? `**wrong**, ${bin(bytes)}: ${+ratio.toFixed(3)}× the seed's figure${why}` : `right: ${bin(bytes)}`,
  };
}

/** The seed's "MHA X GB → MQA Y GB" with no context: right only at the context where MHA is X GiB. */
function savingsClaim(o: { id: string; quote: string; label: string; spec: ModelSpec; mhaGiB: number; mqaGiB: number }): SeedClaim {
  const perToken = kvBytesPerToken(o.spec, "f16");
  const tokens = (o.mhaGiB * GiB) / perToken;
  const mqa = kvCacheBytes(withKvHeads(o.spec, 1), { tokens, dtype: "f16" });
  const consistent = Number.isInteger(tokens) && mqa === o.mqaGiB * GiB;
  return {
    id: o.id,
    cell: `s4:${o.label}@${tokens}`,
    quote: o.quote,
    planner: `${bin(o.mhaGiB * GiB)} → ${bin(mqa)} at ${n(tokens)} tokens`,
    where: `§4, ${o.label}, ${n(tokens)} tokens`,
    // As a general figure it is wrong at the contexts the seed's own cache figures use (4K and 128K).
    contradicted: !consistent || [4096, 131072].every((t) => kvCacheBytes(o.spec, { tokens: t, dtype: "f16" }) !== o.mhaGiB * GiB),
    verdict: consistent ? `right only at ${n(tokens)} tokens (and in GiB)` : `**wrong** at every context`,
  };
}

/** Every seed claim, checked. Contradicted claims say so; the ones the planner confirms are listed too. */
export function seedClaims(c: ClaimContext): SeedClaim[] {
  const { seven, seventy, gpu } = c;
  const out: SeedClaim[] = [
    cacheClaim({ id: "mha-4k", cell: "s2:MHA@4096", quote: "over 1 GB", spec: seven, kvHeads: 32, tokens: 4096, seedGiB: 1, where: "§2, 4,096 tokens, MHA" }),
    cacheClaim({ id: "mha-128k", cell: "s2:MHA@131072", quote: "over 32 GB", spec: seven, kvHeads: 32, tokens: 131072, seedGiB: 32, where: "§2, 131,072 tokens, MHA" }),
    cacheClaim({ id: "mqa-128k", cell: "s2:MQA@131072", quote: "MQA brings 128K down to 1 GB", spec: seven, kvHeads: 1, tokens: 131072, seedGiB: 1, where: "§2, 131,072 tokens, MQA; §3, 7B MQA, 128K" }),
    savingsClaim({ id: "save-7b", quote: "8 GB → 0.25 GB", label: "7B", spec: seven, mhaGiB: 8, mqaGiB: 0.25 }),
    savingsClaim({ id: "save-70b", quote: "40 GB → 0.625 GB", label: "70B", spec: seventy, mhaGiB: 40, mqaGiB: 0.625 }),
  ];
  // Ratios: the seed's 32× (7B) and 64× (70B shape) MQA savings.
  for (const [label, spec, seedRatio] of [["7B", seven, 32], ["70B", seventy, 64]] as const) {
    const ratio = kvBytesPerToken(spec, "f16") / kvBytesPerToken(withKvHeads(spec, 1), "f16");
    out.push({ id: `ratio-${label}`, cell: `s4:ratio-${label}`, quote: `MQA saves ${seedRatio}×`, planner: `${ratio}×`, where: `§4, ${label}, ratio column`, contradicted: ratio !== seedRatio, verdict: ratio === seedRatio ? "right" : `**wrong**, ${ratio}×` });
  }
  // Batch claims on the heatmap's GPU (MHA 7B shape).
  const mha = exactMaxBatch(seven, 32, [16384, 32768, 65536, 131072], gpu);
  const beyond = (t: number) => (t > seven.maxPositions ? ` (${k(t)} is beyond Llama-2-7B's max_position_embeddings ${n(seven.maxPositions)}: memory only)` : "");
  const at16 = mha.get(16384)!;
  out.push({
    id: "mha-batch-16k",
    cell: "s6:MHA@16384",
    quote: "batch size 4 is already impossible at 16K",
    planner: `max batch ${at16} at 16K`,
    where: `§6 exact table, MHA row, 16K column (= ${at16}); heatmap MHA panel, cell batch 4 × 16K: ${at16 >= 4 ? "fits" : "does not fit"}`,
    contradicted: at16 >= 4,
    verdict: at16 >= 4 ? `**wrong**: batch ${at16} fits at 16K${beyond(16384)}` : `right: at most ${at16}`,
  });
  for (const [t, b] of mha) {
    if (t < 32768) continue;
    out.push({
      id: `mha-batch1-${k(t)}`,
      cell: `s6:MHA@${t}`,
      quote: "MHA can only handle batch size 1 beyond 32K",
      planner: `max batch ${b} at ${k(t)}`,
      where: `§6 exact table, MHA row, ${k(t)} column (= ${b})`,
      contradicted: b !== 1,
      verdict: (b > 1 ? `**wrong** at ${k(t)}: batch ${b} fits` : b === 0 ? `**wrong** at ${k(t)}: not even batch 1 fits (max context for batch 1: ${n(plan(seven, { gpu, kvHeads: [32] }).variants[0].maxContext)} tokens)` : `right at ${k(t)}`) + (b !== 1 ? beyond(t) : ""),
    });
  }
  return out;
}

/** The "seed said" text for a table cell: every claim about it, with its verdict; "" when the seed said nothing. */
export function claimNote(claims: SeedClaim[], cell: string): string {
  return claims.filter((c) => c.cell === cell).map((c) => `"${c.quote}": ${c.verdict}`).join("; ");
}
