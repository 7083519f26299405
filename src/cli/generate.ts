// `mqa generate <model>`: text generation from an HF folder or a .gguf file. Parses flags, opens
// the runtime, streams text (or prints one JSON object with --json). All logic is in src/generate/.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { UserError } from "../errors.js";
import type { KvDtype } from "../kernels/types.js";
import { KV_DTYPES } from "../kvcache/cache.js";
import { KERNEL_BACKENDS } from "../kernels/index.js";
import { choiceFlag, dtypeFlag, intFlag, numFlag } from "./flags.js";
import { generate } from "../generate/generate.js";
import { encodePrompt, stopTokenIds } from "../generate/prompt.js";
import { openRuntime } from "../generate/runtime.js";
import { defaultModelDir } from "../package-root.js";

interface GenerateFlags {
  prompt: string[];
  promptTokens?: string;
  chat?: boolean;
  system?: string;
  maxTokens: string;
  temperature: string;
  topK: string;
  topP: string;
  minP: string;
  repetitionPenalty: string;
  seed?: string;
  stop: string[];
  ignoreEos?: boolean;
  kvDtype: string;
  backend: string;
  threads?: string;
  json?: boolean;
}

const collect = (v: string, acc: string[]) => [...acc, v];
/** More kernel threads than this only costs memory (each worker holds its own WASM instance). */
const MAX_THREADS = 256;
/** Any integer: the library checks the range and names the option. */
const ANY_INT = { min: Number.MIN_SAFE_INTEGER };

export function register(program: Command): void {
  program
    .command("generate")
    .description("Generate text with a model folder (config.json + safetensors + tokenizer.json) or a .gguf file")
    .argument("[model]", "HF model folder or .gguf file (default: the small KJV + State of the Union model shipped in models/default)")
    .option("--prompt <text>", "prompt text (repeat for a batch sharing one paged KV cache)", collect, [] as string[])
    .option("--prompt-tokens <ids>", "prompt as comma-separated token ids, e.g. 1,2,3 (no tokenizer needed)")
    .option("--chat", "wrap the prompt as a user message with the model's chat template")
    .option("--system <text>", "system message for --chat")
    .option("--max-tokens <n>", "new tokens per prompt", "64")
    .option("--temperature <t>", "sampling temperature; 0 = greedy", "0")
    .option("--top-k <k>", "keep the k most likely tokens (0 = off)", "0")
    .option("--top-p <p>", "nucleus sampling threshold (1 = off)", "1")
    .option("--min-p <p>", "drop tokens below p × the top probability (0 = off)", "0")
    .option("--repetition-penalty <r>", "penalty on already-seen tokens (1 = off)", "1")
    .option("--seed <n>", "random seed (default: random)")
    .option("--stop <text>", "stop string (repeatable)", collect, [] as string[])
    .option("--ignore-eos", "keep generating past the end-of-sequence token")
    .option("--kv-dtype <type>", `KV cache storage: ${KV_DTYPES.join(", ")}`, "f32")
    .option("--backend <name>", `kernels: ${KERNEL_BACKENDS.join(", ")}`, "auto")
    .option("--threads <n>", "kernel threads (default: all cores)")
    .option("--json", "print one JSON object (tokens, text, timings, kvCacheBytes) instead of streaming")
    .action(async (modelArg: string | undefined, flags: GenerateFlags) => {
      const modelPath = modelArg ?? defaultModelDir();
      if (modelArg === undefined && !existsSync(join(modelPath, "config.json"))) throw new UserError(`generate: no model given and the default model ${modelPath} is missing; pass a model folder or .gguf file`);
      if (flags.prompt.length === 0 && flags.promptTokens === undefined) throw new UserError("generate: give --prompt <text> or --prompt-tokens <ids>");
      if (flags.prompt.length > 0 && flags.promptTokens !== undefined) throw new UserError("generate: give either --prompt or --prompt-tokens, not both");
      flags.kvDtype = dtypeFlag("--kv-dtype", flags.kvDtype, KV_DTYPES);
      const backend = choiceFlag("--backend", flags.backend, KERNEL_BACKENDS);
      if (flags.promptTokens !== undefined && (flags.chat || flags.system !== undefined)) throw new UserError("generate: --chat and --system wrap --prompt text; --prompt-tokens are used as given");
      if (flags.system !== undefined && !flags.chat) throw new UserError("generate: --system needs --chat (the system message goes through the chat template)");
      if (flags.stop.some((s) => s === "")) throw new UserError(`--stop "": expected a non-empty stop string`);
      const threads = flags.threads !== undefined ? intFlag("--threads", flags.threads, { max: MAX_THREADS }) : undefined;
      const rt = await openRuntime(modelPath, { backend, threads, tokenizer: flags.promptTokens !== undefined ? "optional" : true });
      try {
        let prompts: number[][];
        if (flags.promptTokens !== undefined) {
          prompts = [flags.promptTokens.split(",").map((s) => intFlag("--prompt-tokens", s, { min: 0 }))];
        } else {
          const tok = rt.tokenizer!;
          prompts = await Promise.all(flags.prompt.map((p) => encodePrompt(tok, p, { chat: flags.chat, system: flags.system }, modelPath)));
        }
        const tok = rt.tokenizer;
        const eos = stopTokenIds(rt, modelPath);
        const stream = !flags.json && prompts.length === 1 && tok !== null;
        const result = generate(rt.model, prompts, {
          // Ranges are the library's (checkSampling, the generation loop): its errors name the option, which the CLI shows as the flag.
          maxTokens: intFlag("--max-tokens", flags.maxTokens, ANY_INT),
          temperature: numFlag("--temperature", flags.temperature),
          topK: intFlag("--top-k", flags.topK, ANY_INT),
          topP: numFlag("--top-p", flags.topP),
          minP: numFlag("--min-p", flags.minP),
          repetitionPenalty: numFlag("--repetition-penalty", flags.repetitionPenalty),
          seed: flags.seed !== undefined ? intFlag("--seed", flags.seed, ANY_INT) : undefined,
          stopTokens: flags.ignoreEos ? [] : eos,
          stopStrings: flags.stop,
          decode: tok ? (ids) => tok.decode(ids) : undefined,
          kvDtype: flags.kvDtype as KvDtype,
          onText: stream ? (_b, delta) => process.stdout.write(delta) : undefined,
        });
        const timing = {
          prefillTokens: result.prefillTokens,
          prefillTokensPerSecond: result.prefillTokens / Math.max(result.prefillSeconds, 1e-9),
          decodeTokens: result.decodeTokens,
          decodeTokensPerSecond: result.decodeTokens > 0 ? result.decodeTokens / Math.max(result.decodeSeconds, 1e-9) : 0,
          kvCacheBytes: result.kvCacheBytes,
          kvCacheReservedBytes: result.kvCacheReservedBytes,
          kernels: rt.kernels.name,
          threads: rt.kernels.threads,
          loadSeconds: rt.loadSeconds,
        };
        if (flags.json) {
          const seqs = result.sequences.map((s, b) => ({ promptTokens: prompts[b].length, tokens: s.tokens, text: s.text, finishReason: s.finishReason }));
          // A batch keeps the contract's keys too: tokens and text per prompt, in prompt order.
          const one = seqs.length === 1 ? seqs[0] : { sequences: seqs, tokens: seqs.map((s) => s.tokens), text: seqs.map((s) => s.text) };
          console.log(JSON.stringify({ model: modelPath, kvDtype: flags.kvDtype, ...one, ...timing }));
        } else if (stream) {
          process.stdout.write("\n");
          console.error(`[${result.sequences[0].tokens.length} tokens, prefill ${timing.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${timing.decodeTokensPerSecond.toFixed(1)} tok/s, KV ${timing.kvCacheBytes} bytes, ${timing.kernels}]`);
        } else {
          result.sequences.forEach((s, b) => console.log(`[${b}] ${tok ? s.text : s.tokens.join(",")}`));
        }
      } finally {
        rt.close();
      }
    });
}
