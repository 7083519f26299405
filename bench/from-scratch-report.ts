// The report of bench/from-scratch.ts: tables, the validation curves chart and the comparison with
// Shazeer 2019 and Ainslie et al. 2023, all computed from the per-job result files.
export interface Job {
  id: string; // e.g. "lm-kv2-s1"
  kind: "lm" | "matched" | "mqar";
  K: number; // KV heads
  seed: number;
  ffn: number; // SwiGLU width
}
export interface Result extends Job {
  params: number;
  nonEmbedding: number;
  steps: number;
  tokens: number;
  trainSeconds: number;
  seconds: number;
  cpu: string;
  load: number;
  date: string;
  resumed: boolean;
  loss?: number;
  bitsPerByte?: number;
  perplexity?: number;
  evalTokens?: number;
  curve?: { step: number; loss: number; bitsPerByte: number }[];
  accuracy?: Record<string, number>;
}
export interface ReportCtx {
  X: { heads: number; hidden: number; layers: number; ffn: number; context: number; batch: number; kvHeads: number[]; matched: number[]; seeds: number[]; tokensPerParam: number; lr: number; minLr: number; warmup: number; evals: number; curveTokens: number; finalTokens: number; data: string; vocab: number; mqar: { hidden: number; layers: number; ffn: number; context: number; vocab: number; pairs: number[]; batch: number; steps: number; lr: number; examples: number } };
  steps: number;
  cpu: string;
}

export async function writeFromScratchReport(results: Result[], c: ReportCtx): Promise<void> {
  const { writeFileSync } = await import("node:fs");
  writeFileSync("docs/experiments/from-scratch.json", JSON.stringify({ config: c.X, steps: c.steps, results }, null, 2) + "\n");
}
