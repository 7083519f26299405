// Quantized GGUF mistakes from the outside (`mqa info`, `mqa generate`): a tensor of a ggml type mqa
// does not read names the tensor and its type and lists the supported ones, in one line, exit 2;
// a k-quant tensor whose rows are not whole 256-value super-blocks is refused the same way.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportGguf } from "../src/convert/export-gguf.js";
import { runCli } from "./cli-helpers.js";
import { MODELS_DIR } from "./models-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "mqa-quant-bad-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function expectBad(args: string[], ...parts: string[]): Promise<void> {
  const r = await runCli(args[0] === "generate" ? [...args, "--backend", "reference"] : args);
  const what = args.join(" ");
  assert.equal(r.code, 2, `${what}: exit ${r.code}, stderr ${r.err}`);
  assert.equal(r.err.split("\n").length, 1, `${what}: one line, got ${r.err}`);
  assert.match(r.err, /^mqa: /, what);
  for (const p of parts) assert.ok(r.err.includes(p), `${what}: "${r.err}" lacks ${p}`);
}

/** The GGUF at `src` with the ggml type code of tensor `name` replaced by `code`. */
function withType(src: string, out: string, name: string, code: number): string {
  const b = Buffer.from(readFileSync(src));
  const key = Buffer.from(name);
  const at = b.indexOf(key) + key.length; // then u32 n_dims, u64 ne[n_dims], u32 type
  b.writeUInt32LE(code, at + 4 + 8 * b.readUInt32LE(at));
  writeFileSync(out, b);
  return out;
}

test("a GGUF tensor of an unsupported ggml type (Q2_K, IQ4_XS, an unknown code): one line naming tensor, type and the supported list", async () => {
  const good = join(tmp, "good.gguf");
  exportGguf(join(MODELS_DIR, "llama-mha-f32"), good, "f32");
  const supported = "supported: F32 (0), F16 (1), Q4_0 (2), Q4_1 (3), Q5_0 (6), Q5_1 (7), Q8_0 (8), Q4_K (12), Q5_K (13), Q6_K (14), BF16 (30)";
  for (const [code, shown] of [[10, "Q2_K (10)"], [23, "IQ4_XS (23)"], [99, "ggml type 99,"]] as const) {
    const bad = withType(good, join(tmp, `t${code}.gguf`), "blk.0.attn_q.weight", code);
    for (const cmd of ["info", "generate"]) {
      await expectBad([cmd, bad, ...(cmd === "generate" ? ["--prompt", "hi"] : [])], `tensor "blk.0.attn_q.weight" has ggml type`, shown, "which mqa does not read", supported);
    }
  }
});

test("a Q4_K tensor whose rows are not whole 256-value super-blocks is refused, naming its row length", async () => {
  const q = join(tmp, "q40.gguf");
  exportGguf(join(MODELS_DIR, "llama-mha-f32"), q, "q4_0"); // rows of 64: Q4_0 blocks
  const bad = withType(q, join(tmp, "q4k-64.gguf"), "blk.0.attn_q.weight", 12);
  await expectBad(["info", bad], `Q4_K tensor "blk.0.attn_q.weight" has a row of 64 values; expected a multiple of 256`);
});
