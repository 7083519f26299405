// The command registry: one line per command file.
import type { Command } from "commander";

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [];
