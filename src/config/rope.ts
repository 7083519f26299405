// RoPE frequency scaling, parsed once: HF rope_scaling (or transformers v5 rope_parameters), GGUF
// rope.scaling.* keys and llama.cpp's rope_freqs tensor all become one RopeScaling value. The
// runtime (models/blocks.ts ropeInvFreq), the runtime's support check (models/index.ts) and the
// GGUF writer (convert/export-gguf.ts) switch on `type`; none of them reads the raw object.

/** How rotary frequencies are rescaled for long context; null in the spec means none. */
export type RopeScaling =
  | { type: "linear"; factor: number } // every frequency divided by factor (positions interpolated), e.g. 8
  | {
      // Llama 3.1 (transformers' _compute_llama3_parameters): long wavelengths divided by factor, short kept, smooth between
      type: "llama3";
      factor: number; // e.g. 8
      lowFreqFactor: number; // e.g. 1
      highFreqFactor: number; // e.g. 4
      originalMaxPositions: number; // e.g. 8192
    }
  | { type: "freq_factors"; factors: number[] } // llama.cpp's rope_freqs tensor: frequency i divided by factors[i]
  // A scaling the runtime does not implement (yarn, longrope, dynamic, ...) or one with a bad field. The planner does
  // not need RoPE and reads the model anyway; the runtime refuses with `problem`, worded after the config's own keys.
  | { type: "unsupported"; name: string; problem: string };

/**
 * Parses an HF rope_scaling object (keys `rope_type` or the older `type`). Returns null for "default".
 * Bad values do not throw here: they become { type: "unsupported", problem } so the planner still reads the config.
 */
export function parseRopeScaling(raw: Record<string, unknown>): RopeScaling | null {
  const name = String(raw.rope_type ?? raw.type ?? "default");
  if (name === "default") return null;
  // Name the key the config used: rope_scaling.type (Phi-3's "longrope" / "su") or rope_scaling.rope_type.
  const field = raw.rope_type !== undefined ? "rope_scaling.rope_type" : "rope_scaling.type";
  const bad = (problem: string): RopeScaling => ({ type: "unsupported", name, problem });
  const missing: string[] = [];
  const positive = (key: string): number => {
    const v = raw[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) missing.push(`rope_scaling.${key} is ${JSON.stringify(v) ?? "missing"}; expected a positive number for rope_type "${name}"`);
    return v as number;
  };
  if (name === "linear") {
    const factor = positive("factor");
    return missing.length ? bad(missing[0]) : { type: "linear", factor };
  }
  if (name === "llama3") {
    const factor = positive("factor");
    const originalMaxPositions = positive("original_max_position_embeddings");
    const lowFreqFactor = positive("low_freq_factor");
    const highFreqFactor = positive("high_freq_factor");
    if (missing.length) return bad(missing[0]);
    if (highFreqFactor <= lowFreqFactor) return bad(`rope_scaling.high_freq_factor ${highFreqFactor} must exceed low_freq_factor ${lowFreqFactor}`);
    return { type: "llama3", factor, lowFreqFactor, highFreqFactor, originalMaxPositions };
  }
  const hint = name === "longrope" || name === "su" ? " (Phi-3's long-context LongRoPE factors are not implemented)" : "";
  return bad(`${field} "${name}" is not supported${hint}; expected llama3, linear or no rope_scaling`);
}
