// The package folder (the one holding package.json), found by walking up from this file, which sits
// in src/ when run through tsx and in dist/src/ when compiled. Shipped assets (build/, dist/web,
// models/) are resolved from it.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`package-root.ts: no package.json above ${fileURLToPath(import.meta.url)}`);
}

/** The small model shipped by bench/uptraining.ts --ship that `mqa generate` uses when given no model. */
export function defaultModelDir(): string {
  return join(packageRoot(), "models", "default");
}
