// Flag values shared by every command: one parser per kind of value, so that the same spelling
// means the same thing everywhere.
import { UserError } from "../errors.js";
import { canonicalDtype } from "../dtypes/table.js";

/** The canonical dtype for a flag value in any accepted spelling ("fp16", "half", "BF16", ...). */
export function dtypeFlag(flag: string, value: string, allowed: readonly string[]): string {
  try {
    return canonicalDtype(value, allowed);
  } catch (e) {
    throw new UserError(`${flag}: ${(e as Error).message}`);
  }
}
