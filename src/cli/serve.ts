// `mqa serve [model]`: an OpenAI-compatible HTTP server for one model (HF folder or .gguf).
// Parses flags, opens the runtime, starts src/serve/server.ts and waits for Ctrl-C / SIGTERM.
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { Command } from "commander";
import { UserError } from "../errors.js";
import type { KvDtype } from "../kernels/types.js";
import { KV_DTYPES } from "../kvcache/cache.js";
import { KERNEL_BACKENDS } from "../kernels/index.js";
import { choiceFlag, dtypeFlag, intFlag, numFlag, PORT } from "./flags.js";
import { openRuntime } from "../generate/runtime.js";
import { defaultModelDir } from "../package-root.js";
import { startServer } from "../serve/server.js";

interface ServeFlags {
  host: string;
  port: string;
  threads?: string;
  kvDtype: string;
  maxTokensDefault: string;
  parallel: string;
  prefillChunk: string;
  maxQueue?: string;
  prefixCache: boolean;
  queueTimeout: string;
  backend: string;
  modelName?: string;
  chatTemplate?: string;
  apiKey?: string;
  quiet?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("serve")
    .description("Serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models, /health)")
    .argument("[model]", "HF model folder or .gguf file (default: the small model shipped in models/default)")
    .option("--host <addr>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "TCP port; 0 picks a free one (the printed URL says which)", "8080")
    .option("--threads <n>", "kernel threads (default: all cores)")
    .option("--kv-dtype <type>", `KV cache storage: ${KV_DTYPES.join(", ")}`, "f32")
    .option("--max-tokens-default <n>", "max_tokens for requests that give none", "256")
    .option("--parallel <n>", "sequences generated at once (continuous batching; KV for n × the context is reserved while busy); also the most prompts per request", "4")
    .option("--no-prefix-cache", "compute every prompt in full (by default full blocks of earlier prompts' KV are reused, and the KV pool stays reserved)")
    .option("--max-queue <n>", "requests that may wait for a slot (default 4 × --parallel); one more gets 429 with Retry-After; 0 = no waiting")
    .option("--queue-timeout <seconds>", "a request that waits longer for a slot gets 503 (0 = wait without limit)", "300")
    .option("--prefill-chunk <n>", "prompt tokens per step, shared by the requests still prefilling; between steps the server answers /health, admits requests and notices hang-ups", "512")
    .option("--backend <name>", `kernels: ${KERNEL_BACKENDS.join(", ")}`, "auto")
    .option("--model-name <id>", "model id in /v1/models and responses (default: the folder or file name)")
    .option("--chat-template <file>", "Jinja chat template to use instead of the model's (or when it has none)")
    .option("--api-key <key>", "require \"Authorization: Bearer <key>\" on every route but /health")
    .option("--quiet", "do not log one line per request on stderr")
    .option("--json", "print one JSON line {url, model, ...} once listening (for scripts) instead of a sentence")
    .action(async (modelArg: string | undefined, flags: ServeFlags) => {
      const modelPath = modelArg ?? defaultModelDir();
      if (modelArg === undefined && !existsSync(join(modelPath, "config.json"))) throw new UserError(`serve: no model given and the default model ${modelPath} is missing; pass a model folder or .gguf file`);
      flags.kvDtype = dtypeFlag("--kv-dtype", flags.kvDtype, KV_DTYPES);
      const backend = choiceFlag("--backend", flags.backend, KERNEL_BACKENDS);
      const port = intFlag("--port", flags.port, PORT);
      const threads = flags.threads !== undefined ? intFlag("--threads", flags.threads, { max: 256 }) : undefined;
      const maxTokensDefault = intFlag("--max-tokens-default", flags.maxTokensDefault, { min: 0 });
      const parallel = intFlag("--parallel", flags.parallel, { max: 256 });
      const prefillChunk = intFlag("--prefill-chunk", flags.prefillChunk);
      const maxQueue = flags.maxQueue !== undefined ? intFlag("--max-queue", flags.maxQueue, { min: 0 }) : 4 * parallel;
      const queueTimeout = numFlag("--queue-timeout", flags.queueTimeout, { min: 0, max: 86400 });
      const chatTemplate = flags.chatTemplate !== undefined ? readTemplate(flags.chatTemplate) : null;
      const rt = await openRuntime(modelPath, { backend, threads, tokenizer: "optional" });
      try {
        if (chatTemplate !== null && rt.tokenizer) rt.tokenizer.chatTemplate = chatTemplate;
        const id = flags.modelName ?? basename(modelPath.replace(/[/\\]+$/, "")).replace(/\.gguf$/i, "");
        const log = flags.quiet ? undefined : (line: string) => console.error(line);
        const server = await startServer({ served: { id, model: rt.model, tokenizer: rt.tokenizer, maxTokensDefault, parallel }, kvDtype: flags.kvDtype as KvDtype, prefillChunk, prefixCache: flags.prefixCache, maxQueue, queueTimeoutSeconds: queueTimeout > 0 ? queueTimeout : undefined, host: flags.host, port, apiKey: flags.apiKey, log });
        const info = {
          url: server.url,
          openaiBaseUrl: `${server.url}/v1`,
          model: id,
          path: modelPath,
          contextTokens: rt.model.maxContext,
          tokenizer: rt.tokenizer !== null,
          chatTemplate: rt.tokenizer?.chatTemplate != null,
          kvDtype: flags.kvDtype,
          parallel,
          prefixCache: flags.prefixCache,
          maxQueue,
          queueTimeoutSeconds: queueTimeout > 0 ? queueTimeout : null,
          kernels: rt.kernels.name,
          threads: rt.kernels.threads,
          loadSeconds: rt.loadSeconds,
        };
        if (flags.json) console.log(JSON.stringify(info));
        else console.log(`mqa serve: model "${id}" (${modelPath}, context ${info.contextTokens} tokens, ${info.kernels} ×${info.threads}) at ${info.openaiBaseUrl} (Ctrl-C to stop)`);
        await new Promise<void>((ok) => {
          const stop = () => void server.close().then(ok);
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
        });
      } finally {
        rt.close();
      }
    });
}

function readTemplate(path: string): string {
  if (!existsSync(path)) throw new UserError(`--chat-template: ${path}: no such file`);
  const text = readFileSync(path, "utf8");
  if (text.trim() === "") throw new UserError(`--chat-template: ${path} is empty`);
  return text;
}
