// One linear memory for everything the kernels touch: KV caches, weights, activations.
// It is a WebAssembly.Memory (shared when threads are used), so WASM kernels and worker threads
// read the same bytes with no copies. Pointers are byte offsets into it. Views are made on demand
// because growing the memory detaches old ArrayBuffer views (non-shared) or leaves them short.
import { UserError } from "../errors.js";

const PAGE_BYTES = 65536;
/** wasm32 addresses stop at 4 GiB; this is the hard ceiling of every model + cache we hold. */
export const WASM32_MAX_PAGES = 65536;
export const WASM32_MAX_BYTES = WASM32_MAX_PAGES * PAGE_BYTES;

export interface ArenaOptions {
  shared?: boolean; // true for worker_threads (SharedArrayBuffer); default true
  initialBytes?: number; // e.g. 64 MiB
  base?: number; // first byte the arena may hand out (WASM static data sits below), default 64 KiB
  memory?: WebAssembly.Memory; // use an existing memory instead of creating one
}

interface FreeBlock {
  ptr: number;
  bytes: number;
}

/**
 * First-fit allocator with coalescing over a WebAssembly.Memory. Allocations are 64-byte aligned
 * (a cache line, and a multiple of the 16-byte SIMD width). Grows the memory as needed and fails
 * with a UserError, not a crash, past wasm32's 4 GiB.
 */
export class Arena {
  readonly memory: WebAssembly.Memory;
  private free: FreeBlock[] = []; // sorted by ptr
  private top: number; // end of the highest allocation ever made
  private sizes = new Map<number, number>(); // live ptr -> bytes
  liveBytes = 0;

  constructor(opts: ArenaOptions = {}) {
    const initialPages = Math.ceil((opts.initialBytes ?? 16 * 1024 * 1024) / PAGE_BYTES);
    this.memory =
      opts.memory ??
      new WebAssembly.Memory({ initial: initialPages, maximum: WASM32_MAX_PAGES, shared: opts.shared ?? true } as WebAssembly.MemoryDescriptor);
    this.top = align(opts.base ?? 65536, 64);
  }

  /** Allocates `bytes` bytes (64-byte aligned) and returns the byte offset. */
  alloc(bytes: number, what = "buffer"): number {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`Arena.alloc(${what}): bad size ${bytes}`);
    const size = align(Math.max(bytes, 1), 64);
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i];
      if (f.bytes >= size) {
        const ptr = f.ptr;
        if (f.bytes === size) this.free.splice(i, 1);
        else {
          f.ptr += size;
          f.bytes -= size;
        }
        return this.track(ptr, size);
      }
    }
    const ptr = this.top;
    const end = ptr + size;
    if (end > WASM32_MAX_BYTES) {
      throw new UserError(
        `${what} needs ${fmtMiB(size)} but wasm32 memory stops at 4 GiB (${fmtMiB(this.liveBytes)} already in use); ` +
          `use a smaller model, context or batch, or a lower-precision cache`,
      );
    }
    this.ensure(end);
    this.top = end;
    return this.track(ptr, size);
  }

  /** Returns a block to the free list, merging with its neighbours. */
  release(ptr: number): void {
    const bytes = this.sizes.get(ptr);
    if (bytes === undefined) throw new Error(`Arena.release: ${ptr} is not a live allocation`);
    this.sizes.delete(ptr);
    this.liveBytes -= bytes;
    let i = 0;
    while (i < this.free.length && this.free[i].ptr < ptr) i++;
    this.free.splice(i, 0, { ptr, bytes });
    if (i + 1 < this.free.length && ptr + bytes === this.free[i + 1].ptr) {
      this.free[i].bytes += this.free[i + 1].bytes;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].ptr + this.free[i - 1].bytes === ptr) {
      this.free[i - 1].bytes += this.free[i].bytes;
      this.free.splice(i, 1);
    }
  }

  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }
  u16(ptr: number, length: number): Uint16Array {
    return new Uint16Array(this.memory.buffer, ptr, length);
  }
  i8(ptr: number, length: number): Int8Array {
    return new Int8Array(this.memory.buffer, ptr, length);
  }
  u8(ptr: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, length);
  }
  i32(ptr: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, length);
  }

  private track(ptr: number, size: number): number {
    this.sizes.set(ptr, size);
    this.liveBytes += size;
    return ptr;
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    // Grow by at least 25 % so a growing cache does not grow the memory every step.
    const wantPages = Math.min(Math.max(Math.ceil(end / PAGE_BYTES), Math.ceil((have * 1.25) / PAGE_BYTES)), WASM32_MAX_PAGES);
    this.memory.grow(wantPages - have / PAGE_BYTES);
  }
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function fmtMiB(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
