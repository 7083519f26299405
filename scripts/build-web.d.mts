// Types for scripts/build-web.mjs (imported by test/web.test.ts and test/web-model.test.ts).
export function typecheckWeb(): void;
/** stubbed: "importer → node:module" for every node:* import the engine bundles resolved to the Node-only stub. */
export function buildWeb(opts?: { outDir?: string; minify?: boolean }): Promise<{ outDir: string; sizes: Record<string, number>; stubbed: string[] }>;
