// The planner's public surface (pure; safe to bundle for the browser). Node-only pieces (loadSpec,
// chart rendering to files) live in src/formats/model-file.ts and src/planner/render.ts.
export { plan, decodeEstimate, activationBytesPerGpu, resolvePlanOptions, searchMaxContext, MAX_CONTEXT_LIMIT } from "./plan.js";
export type { PlanOptions, PlanResult, VariantPlan, DecodeEstimate, ActivationModel, ResolvedPlanOptions } from "./plan.js";
export { deployCommand, parseEngine, ENGINES, ENGINE_SOURCES } from "./deploy.js";
export type { DeployCommand, DeployFlag, DeployOptions, Engine } from "./deploy.js";
export { listGpus, gpuByName, customGpu } from "./gpus.js";
export type { GpuSpec } from "./gpus.js";
export { paramCounts, weightBytes, tensorTable } from "./params.js";
export type { ParamCounts, ParamGroup, TensorEntry, WeightBytes } from "./params.js";
export { specFromHfConfig } from "../config/hf.js";
export { specFromGgufMetadata } from "../config/gguf.js";
export { listPresets, presetNames, presetSpec, findPreset, closestNames } from "../config/presets.js";
export type { Preset } from "../config/presets.js";
export { withKvHeads, parseKvHeads, kvHeadsLabel, divisors } from "../config/variant.js";
export { cacheVsContextChart, heatmapChart, heatmapCells, throughputChart, buildChart, chartKindFromPath, chartKvHeads, CHART_KINDS } from "./charts.js";
export type { ChartKind, HeatmapCell } from "./charts.js";
export { trainPlan, resolveTrainOptions, modelStateBytes, activationBytesPerLayer, activationBytes, logitsBytes, loraParams, trainFlopsPerToken, optimizerBytesPerParam, OPTIMIZERS, ZERO_STAGES, LORA_TARGETS } from "./train.js";
export type { TrainOptions, ResolvedTrainOptions, TrainPlanResult, TrainVariant, TrainMemory, Optimizer, ModelStateBytes } from "./train.js";
