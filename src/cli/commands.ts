// The command registry: one line per command file.
import type { Command } from "commander";
import { register as attention } from "./attention.js";
import { register as attentionDemo } from "./attention-demo.js";
import { register as bench } from "./bench.js";
import { register as convert } from "./convert.js";
import { register as evaluate } from "./eval.js";
import { register as exportGguf } from "./export-gguf.js";
import { register as generate } from "./generate.js";
import { register as info } from "./info.js";
import { register as plan } from "./plan.js";
import { register as prepareData } from "./prepare-data.js";
import { register as seedTables } from "./seed-tables.js";
import { register as serve } from "./serve.js";
import { register as train } from "./train.js";
import { register as web } from "./web.js";

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [attention, attentionDemo, bench, plan, seedTables, web, prepareData, train, convert, evaluate, generate, info, exportGguf, serve];
