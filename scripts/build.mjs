// Build: AssemblyScript kernels to build/*.wasm (if sources exist), then TypeScript to dist/.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const run = (cmd, args) => execFileSync(cmd, args, { stdio: "inherit" });
const asmDir = "src/kernels/assembly";
run(process.execPath, [join(asmDir, "gen-abi.mjs")]); // src/kernels/abi.ts, the host's copy of the kernel ABI
if (existsSync(join(asmDir, "build.mjs"))) run(process.execPath, [join(asmDir, "build.mjs")]);
run(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"]);
run(process.execPath, ["scripts/build-web.mjs"]); // the web pages (planner, model.html + engine workers, kernels, models/default) -> dist/web/
mkdirSync("build", { recursive: true });
