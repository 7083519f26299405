// Types for scripts/build-web.mjs (imported by test/web.test.ts).
export function typecheckWeb(): void;
export function buildWeb(opts?: { outDir?: string; minify?: boolean }): Promise<{ outDir: string; sizes: Record<string, number> }>;
