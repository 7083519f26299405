// `mqa eval` as a library call: open the model (and the reference), build the input, score it.
import { existsSync, realpathSync } from "node:fs";
import type { KernelBackend } from "../kernels/index.js";
import type { KvDtype } from "../kernels/types.js";
import { openRuntime, type Runtime } from "../generate/runtime.js";
import { OptionError, UserError } from "../errors.js";
import { evaluateTokens, type EvalScores } from "./eval.js";
import { splitInput, textInput, type EvalInput } from "./input.js";

export interface EvalRunOptions {
  model: string; // HF folder or .gguf
  text?: string | null; // a text file, or
  split?: "validation" | null; // a split of prepared data in `data`
  data?: string; // prepared data folder (default "data")
  context?: number | null; // default: min(the model's maximum, 512)
  stride?: number | null; // default: context / 2
  kvDtype?: KvDtype;
  maxTokens?: number | null;
  reference?: string | null;
  referenceKvDtype?: KvDtype;
  backend?: KernelBackend;
  threads?: number;
  onProgress?: (scored: number, total: number) => void;
}

export type EvalReport = EvalScores & {
  model: string; reference: string | null; source: string; prefix: EvalInput["prefix"];
  context: number; stride: number; kvDtype: KvDtype; referenceKvDtype: KvDtype | null; kernels: string; threads: number;
};

export const DEFAULT_EVAL_CONTEXT = 512;

export async function runEval(o: EvalRunOptions): Promise<EvalReport> {
  if ((o.text ? 1 : 0) + (o.split ? 1 : 0) !== 1) throw new OptionError(["text", "split"], "eval: give either text <file> or split validation");
  if (o.text && !existsSync(o.text)) throw new UserError(`${o.text}: no such file; expected a UTF-8 text file to score`);
  const rt = await openRuntime(o.model, { backend: o.backend, threads: o.threads });
  const opened: Runtime[] = [rt];
  try {
    // The reference may be the model itself (e.g. its f32 cache against an int8 one): one copy serves both.
    let ref: Runtime | null = null;
    if (o.reference) {
      ref = samePath(o.reference, o.model) ? rt : await openRuntime(o.reference, { backend: o.backend, threads: o.threads });
      if (ref !== rt) opened.push(ref);
    }
    const tok = rt.tokenizer!;
    const other = ref && ref !== rt ? { tok: ref.tokenizer!, name: o.reference! } : null;
    const input = o.text ? textInput(o.text, tok) : splitInput(o.data ?? "data", "validation", [{ tok, name: o.model }, ...(other ? [other] : [])]);
    if (other && o.text) {
      const again = textInput(o.text, other.tok).ids;
      if (again.length !== input.ids.length || again.some((x, i) => x !== input.ids[i])) {
        throw new UserError(`${o.reference}: the reference tokenizes ${input.source} differently from ${o.model}; a KL divergence compares the same tokens`);
      }
    }
    const context = o.context ?? Math.min(rt.model.maxContext, ref?.model.maxContext ?? Infinity, DEFAULT_EVAL_CONTEXT);
    const stride = o.stride ?? Math.max(1, Math.floor(context / 2));
    if (stride > context) throw new UserError(`eval: stride ${stride} is larger than the context ${context}; windows would skip tokens`);
    const kvDtype = o.kvDtype ?? "f32";
    const referenceKvDtype = o.referenceKvDtype ?? "f32";
    const scores = evaluateTokens(input.ids, input.bytesOf, { model: rt.model, kvDtype }, { context, stride, maxTokens: o.maxTokens ?? undefined, onProgress: o.onProgress },
      ref ? { model: ref.model, kvDtype: referenceKvDtype } : undefined);
    return {
      model: o.model, reference: o.reference ?? null, source: input.source, prefix: input.prefix, context, stride, kvDtype, referenceKvDtype: ref ? referenceKvDtype : null,
      kernels: rt.kernels.name, threads: rt.kernels.threads, ...scores,
    };
  } finally {
    for (const r of opened) r.close();
  }
}

function samePath(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}
