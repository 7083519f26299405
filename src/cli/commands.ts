// The command registry: one line per command file.
import type { Command } from "commander";
import { register as plan } from "./plan.js";

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [plan];
