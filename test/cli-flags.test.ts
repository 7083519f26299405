// The one number rule of src/cli/flags.ts, for every flag of every command: plain decimal only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { choiceFlag, flagOf, intFlag, intListFlag, numFlag, withFlagNames } from "../src/cli/flags.js";
import { OptionError, UserError } from "../src/errors.js";

test("flags: integers are decimal digits (k suffix only where allowed); 0x10, 1e3, Infinity and '' are refused", () => {
  assert.equal(intFlag("--tp", "4"), 4);
  assert.equal(intFlag("--context", "32k", { k: true }), 32768);
  assert.equal(intFlag("--seed", "-3", { min: -10 }), -3);
  assert.deepEqual(intListFlag("--mqar-pairs", "4, 8"), [4, 8]);
  for (const v of ["0x10", "0b1", "0o7", "1e3", "1.5", "Infinity", "NaN", "", " ", "32k", "9007199254740993"]) {
    assert.throws(() => intFlag("--tp", v), (e: unknown) => e instanceof UserError && e.message === `--tp: "${v}" is not an integer >= 1`, v);
  }
  assert.throws(() => intFlag("--port", "65536", { min: 0, max: 65535 }), /--port: "65536" is not an integer from 0 to 65535/);
});

test("flags: numbers are plain decimal with sign, fraction and exponent; ranges are named in the message", () => {
  assert.equal(numFlag("--lr", "3e-3"), 0.003);
  assert.equal(numFlag("--temperature", "-.5"), -0.5);
  for (const v of ["0x10", "Infinity", "NaN", "", "1,5"]) assert.throws(() => numFlag("--lr", v), new RegExp(`--lr: ".*" is not a number$`), v);
  assert.throws(() => numFlag("--top-p", "0", { min: 0, minOpen: true, max: 1 }), /--top-p: "0" is not a number in \(0, 1\]/);
  assert.throws(() => numFlag("--clip", "-1", { min: 0 }), /--clip: "-1" is not a number >= 0/);
});

test("flags: choices come from the library's lists; library option errors are re-worded with flag names", () => {
  assert.equal(choiceFlag("--backend", "wasm", ["auto", "wasm", "reference"]), "wasm");
  assert.throws(() => choiceFlag("--backend", "gpu", ["auto", "wasm"]), /--backend: "gpu" is not one of auto, wasm/);
  assert.equal(flagOf("maxTokens"), "--max-tokens");
  assert.equal(flagOf("activation.tokens"), "--activation-tokens");
  assert.equal(flagOf("seqLen", { seqLen: "--context" }), "--context");
  const e = withFlagNames(new OptionError(["gpus", "tp"], "gpus 6 is not a multiple of tp 4; expected gpus = tp × replicas")) as Error;
  assert.equal(e.message, "--gpus 6 is not a multiple of --tp 4; expected gpus = tp × replicas");
  const plain = new UserError("x");
  assert.equal(withFlagNames(plain), plain);
});

test("flags: the lab's and the runtime's option errors name fields, and the CLI shows them as flags", async () => {
  const { resolveSteps } = await import("../src/train/run.js");
  const { customGpu } = await import("../src/planner/gpus.js");
  const { encodePrompt } = await import("../src/generate/prompt.js");
  const shown = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return (withFlagNames(err, { seqLen: "--context" }) as Error).message;
    }
    throw new Error("expected an error");
  };
  const cfg = { train: { batch: 2, seqLen: 16, accum: 1, steps: 5 }, fraction: 0.1 } as never;
  assert.match(shown(() => resolveSteps(cfg, null)), /^--fraction 0\.1: give --base-tokens \(the pre-training budget in tokens\)$/);
  assert.match(shown(() => customGpu({ memoryGiB: 1e30, bandwidthGBs: 100 })), /^--gpu-memory-gib: 1e\+30 is not a number of GiB/);
  const tok = { encode: () => [1], decode: () => "", chatTemplate: null } as never;
  await assert.rejects(encodePrompt(tok, "hi", { system: "be brief" }, "m"), /m: a system message needs chat mode/);
  await assert.rejects(encodePrompt(tok, "hi", { chat: true }, "m"), /m: chat needs a chat_template/);
});
