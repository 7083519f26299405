// Float32 buffers inside the kernel arena, so that Kernels.matmul can address them by byteOffset.
// The arena's memory is shared, so views stay valid when it grows.
import type { Arena } from "../kernels/memory.js";
import type { Allocator } from "./model.js";

export function arenaAllocator(arena: Arena): Allocator {
  return (n, what) => {
    const v = arena.f32(arena.alloc(n * 4, `train ${what}`), n);
    v.fill(0);
    return v;
  };
}
