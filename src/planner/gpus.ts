// The GPU catalog (gpus.json, every field with its source) and custom GPUs given by numbers. Pure.
import { OptionError } from "../errors.js";
import { closestNames } from "../config/presets.js";
import data from "./gpus.json" with { type: "json" };

export interface GpuSpec {
  id: string; // e.g. "a100-80gb", or "custom"
  name: string; // e.g. "NVIDIA A100 80GB SXM"
  memoryBytes: number; // e.g. 80 GiB = 85899345920
  bandwidthBytesPerSecond: number; // e.g. 2.039e12
  tflopsBf16: number | null; // dense bf16 tensor TFLOP/s, e.g. 312; null when unknown (no compute check)
  sources: Record<string, string>;
}

const GiB = 1024 ** 3;

interface GpuEntry {
  name: string;
  aliases: string[];
  memoryGiB: number;
  bandwidthGBs: number;
  tflopsBf16: number;
  sources: Record<string, string>;
}

const CATALOG: GpuSpec[] = Object.entries(data.gpus as Record<string, GpuEntry>).map(([id, g]) => ({
  id,
  name: g.name,
  memoryBytes: Math.round(g.memoryGiB * GiB),
  bandwidthBytesPerSecond: g.bandwidthGBs * 1e9,
  tflopsBf16: g.tflopsBf16,
  sources: g.sources,
}));
const ALIASES = new Map<string, string>(Object.entries(data.gpus as Record<string, GpuEntry>).flatMap(([id, g]) => [[id, id], ...g.aliases.map((a): [string, string] => [a, id])]));

export function listGpus(): GpuSpec[] {
  return CATALOG;
}

/** A catalog GPU by id or alias (case-insensitive); unknown names throw suggesting the closest ids. */
export function gpuByName(name: string): GpuSpec {
  const id = ALIASES.get(name.trim().toLowerCase());
  const gpu = id ? CATALOG.find((g) => g.id === id) : undefined;
  if (!gpu) {
    throw new OptionError(["gpuMemoryGib", "gpuBandwidthGbs"], `unknown GPU "${name}"; did you mean ${closestNames(name, [...ALIASES.keys()], 3).join(", ")}? (or describe it by gpuMemoryGib and gpuBandwidthGbs)`);
  }
  return gpu;
}

/** A GPU described by numbers: memory in GiB, bandwidth in GB/s (1e9 B/s), optional dense TFLOP/s. */
export function customGpu(opts: { memoryGiB: number; bandwidthGBs: number; tflops?: number | null; name?: string }): GpuSpec {
  const { memoryGiB, bandwidthGBs, tflops = null } = opts;
  // Ranges far beyond any device, so every derived byte count stays an exact integer and every time finite.
  if (!(memoryGiB >= 1 / 1024 && memoryGiB <= 1e6)) throw new OptionError("gpuMemoryGib", `gpuMemoryGib: ${memoryGiB} is not a number of GiB in [1/1024, 1e6]`);
  if (!(bandwidthGBs >= 1e-3 && bandwidthGBs <= 1e6)) throw new OptionError("gpuBandwidthGbs", `gpuBandwidthGbs: ${bandwidthGBs} is not a number of GB/s in [0.001, 1e6]`);
  if (tflops !== null && !(tflops >= 1e-3 && tflops <= 1e6)) throw new OptionError("gpuTflops", `gpuTflops: ${tflops} is not a number of TFLOP/s in [0.001, 1e6]`);
  return {
    id: "custom",
    name: opts.name ?? `custom (${memoryGiB} GiB, ${bandwidthGBs} GB/s${tflops ? `, ${tflops} TFLOP/s` : ""})`,
    memoryBytes: Math.round(memoryGiB * GiB),
    bandwidthBytesPerSecond: bandwidthGBs * 1e9,
    tflopsBf16: tflops,
    sources: { memory: "user", bandwidth: "user", tflops: "user" },
  };
}
