// What V8 makes of the kernels: builds a copy of the relaxed-SIMD kernels with function names
// (asc --debug, otherwise the flags of src/kernels/assembly/build.mjs), has V8 compile every
// function with TurboFan and print the machine code, and lists each hot inner loop (a backward
// jump around at least --min-fma vfmadd) with its size and its stack accesses: an xmm register
// loaded from and stored to [rbp-…] inside a loop is a spill (e.g. an accumulator kept in memory,
// which chains load → FMA → store through the store buffer every iteration).
//
//   node scripts/kernel-disasm.mjs [--filter matvecF16] [--min-fma 8] [--print matvecF16Finite]
// x64 only (the disassembly is V8's x64 output). Never a test: the code depends on V8 and the CPU.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const flag = (name, fallback) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : fallback);
if (process.argv.includes("--help")) {
  console.log("usage: node scripts/kernel-disasm.mjs [--filter NAME] [--min-fma N] [--print NAME]");
  process.exit(0);
}
const filter = flag("--filter", "");
const minFma = Number(flag("--min-fma", "8"));
const printName = flag("--print", "");

const dir = mkdtempSync(join(tmpdir(), "mqa-disasm-"));
const wasm = join(dir, "kernels-relaxed-debug.wasm");
execFileSync(process.execPath, [join(root, "node_modules/assemblyscript/bin/asc.js"), join(root, "src/kernels/assembly/index.ts"), "-O3", "--noAssert", "--runtime", "stub", "--importMemory", "--maximumMemory", "65536", "--enable", "simd", "--enable", "threads", "--sharedMemory", "--enable", "relaxed-simd", "--debug", "-o", wasm], { stdio: "inherit" });
const loader = join(dir, "instantiate.mjs");
writeFileSync(loader, `import { readFileSync } from "node:fs";
const m = new WebAssembly.Module(readFileSync(${JSON.stringify(wasm)}));
const memory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
new WebAssembly.Instance(m, { env: { memory, abort: () => {} } });
`);
const text = execFileSync(process.execPath, ["--experimental-wasm-relaxed-simd", "--no-liftoff", "--no-wasm-lazy-compilation", "--print-wasm-code", loader], { encoding: "utf8", maxBuffer: 1 << 28 });

/** name → [offset, instruction text][] */
const funcs = new Map();
let cur = null;
for (const line of text.split("\n")) {
  if (line.startsWith("name: ")) {
    cur = line.slice(6).trim().split("/").pop();
    funcs.set(cur, []);
    continue;
  }
  const m = cur && /^0x[0-9a-f]+\s+([0-9a-f]+)\s+[0-9a-f]+\s+(.*)$/.exec(line);
  if (m) funcs.get(cur).push([parseInt(m[1], 16), m[2]]);
}
if (printName) {
  const code = funcs.get(printName);
  if (!code) throw new Error(`no function ${printName}; known: ${[...funcs.keys()].join(", ")}`);
  for (const [off, t] of code) console.log(off.toString(16).padStart(5), t);
  process.exit(0);
}
for (const [name, code] of funcs) {
  if (filter && !name.includes(filter)) continue;
  const loops = [];
  for (const [off, t] of code) {
    const j = /^j\w+ 0x[0-9a-f]+\s+<\+0x([0-9a-f]+)>/.exec(t);
    if (j && parseInt(j[1], 16) < off) loops.push([parseInt(j[1], 16), off]);
  }
  const inner = loops.filter((l) => !loops.some((o) => o !== l && o[0] >= l[0] && o[1] <= l[1]));
  for (const [a, b] of inner) {
    const body = code.filter(([o]) => o >= a && o <= b).map(([, t]) => t);
    const fma = body.filter((t) => t.startsWith("vfmadd")).length;
    if (fma < minFma) continue;
    const spills = body.filter((t) => /xmm\d+,\[rbp|\[rbp[^\]]*\],xmm/.test(t));
    console.log(`${name} loop ${a.toString(16)}-${b.toString(16)}: ${body.length} instructions, ${fma} FMA, ${spills.length} xmm stack accesses${spills.length ? ": " + spills.join("; ") : ""}`);
  }
}
