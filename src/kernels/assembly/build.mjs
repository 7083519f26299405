// Compiles the AssemblyScript kernels to build/*.wasm (called by scripts/build.mjs). No binaries
// are committed. Four variants of one source:
//   kernels-simd.wasm          SIMD128, shared imported memory (threads)
//   kernels-relaxed.wasm       + relaxed SIMD (f32x4.relaxed_madd), used when the runtime validates it
//   kernels-simd-st.wasm       SIMD128, unshared imported memory (single thread, e.g. a page
//   kernels-relaxed-st.wasm    without cross-origin isolation)
// The memory is imported with maximum 65536 pages (4 GiB), matching the Arena.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../..");
const out = join(root, "build");
mkdirSync(out, { recursive: true });
const asc = join(root, "node_modules/assemblyscript/bin/asc.js");
const common = [join(here, "index.ts"), "-O3", "--noAssert", "--runtime", "stub", "--importMemory", "--maximumMemory", "65536", "--enable", "simd"];
const variants = [
  { name: "kernels-simd", flags: ["--enable", "threads", "--sharedMemory"] },
  { name: "kernels-relaxed", flags: ["--enable", "threads", "--sharedMemory", "--enable", "relaxed-simd"] },
  { name: "kernels-simd-st", flags: [] },
  { name: "kernels-relaxed-st", flags: ["--enable", "relaxed-simd"] },
];
// Two at a time (the machine has 2 cores); a compile error fails the build with asc's message.
const run = promisify(execFile);
for (let i = 0; i < variants.length; i += 2) {
  await Promise.all(
    variants.slice(i, i + 2).map((v) =>
      run(process.execPath, [asc, ...common, ...v.flags, "-o", join(out, `${v.name}.wasm`)]).catch((e) => {
        process.stderr.write(`${e.stdout ?? ""}${e.stderr ?? ""}`);
        throw new Error(`asc failed for ${v.name}`);
      }),
    ),
  );
}
console.log(`kernels: ${variants.map((v) => v.name).join(", ")} -> build/`);
