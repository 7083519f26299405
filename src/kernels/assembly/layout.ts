// The control block shared by the host (src/kernels/wasm.ts, which mirrors these numbers) and
// every thread. It sits in the Arena; futex words get their own cache lines.

export const CTL_GEN: usize = 0; // i32: bumped by the host to publish a task (sleeping workers wait on it)
export const CTL_DONE: usize = 64; // i32: work items finished in the current task (host waits on it)
export const CTL_NEXT: usize = 128; // i64: task generation << 32 | next work item (claimed by compare-and-swap)
export const CTL_KIND: usize = 192; // i32: task kind
export const CTL_NITEMS: usize = 196; // i32: work items in the task
export const CTL_QUIT: usize = 200; // i32: 1 = workers return from workerLoop
export const CTL_READY: usize = 256; // i32: workers that entered workerLoop
export const CTL_ERR: usize = 260; // i32: tid of a worker whose loop threw (written by the host's worker script)
export const CTL_RESULT: usize = 264; // i32: a flag a task reports back (rows.ts narrow: an inf/NaN half was stored)
export const CTL_ARGS: usize = 320; // u32[64]: task arguments
export const CTL_SINK: usize = 640; // per-thread results of the bandwidth/peak probes, 16 bytes each
export const CTL_BYTES: usize = 1024;

export const KIND_ATTENTION: i32 = 1;
export const KIND_MATMUL: i32 = 2;
export const KIND_STREAM: i32 = 3;
export const KIND_PEAK: i32 = 4;
export const KIND_ACTIVATION: i32 = 5;
export const KIND_TRAIN: i32 = 6;
export const KIND_ROWS: i32 = 7; // rows.ts: the decoder's norms, RoPE and KV narrowing (TR_ argument words)

// Attention arguments (u32 word index into CTL_ARGS).
export const A_Q = 0; // f32 [T, H, D]
export const A_OUT = 1; // f32 [T, H, D]
export const A_T = 2;
export const A_H = 3;
export const A_K = 4;
export const A_D = 5;
export const A_QPOS0 = 6; // i32
export const A_SCALE2 = 7; // f32: scale * log2(e); scores live in base 2
export const A_WINDOW = 8; // 0 = none
export const A_DTYPE = 9;
export const A_SEGS = 10; // segment table, SEG_WORDS u32 per segment
export const A_NSEG = 11;
export const A_TOTAL = 12; // visible rows over all segments
export const A_BQ = 13; // query positions per item
export const A_NQT = 14; // query tiles
export const A_NSPLIT = 15; // key splits per (kv head, query tile)
export const A_SPLIT_ROWS = 16;
export const A_PART = 17; // partial results when NSPLIT > 1
export const A_SCRATCH = 18;
export const A_SCRATCH_STRIDE = 19; // bytes per thread
export const A_DP = 20; // D rounded up to 4
export const A_BK = 21; // keys per tile (at most ATTN_WIDE_TILE where a tile is widened into scratch)
export const A_DIRECT = 22; // 1: read f32 rows in place (f32 cache, D % 4 == 0)
export const A_KVFINITE = 23; // 1: the caller promises no inf/NaN half in f16 rows (AttentionCall.kvFinite)
export const A_SOFTCAP2 = 24; // f32: softcap * log2(e) (Gemma-2 logit soft-capping, in base 2); 0 = none

// Segment table entry (u32 words).
export const SEG_WORDS: usize = 12;
export const S_KPTR = 0;
export const S_VPTR = 1;
export const S_HEAD_STRIDE = 2;
export const S_ROW_STRIDE = 3;
export const S_FIRST_POS = 4;
export const S_R0 = 5; // first visible row
export const S_R1 = 6; // one past the last visible row
export const S_KSCALE = 7;
export const S_VSCALE = 8;
export const S_SCALE_HEAD_STRIDE = 9;
export const S_CUM = 10; // visible rows in earlier segments

// Matmul arguments.
export const M_X = 0;
export const M_W = 1;
export const M_BIAS = 2;
export const M_OUT = 3;
export const M_M = 4;
export const M_N = 5;
export const M_KIN = 6;
export const M_DTYPE = 7;
export const M_MB = 8; // rows of x per item
export const M_NB = 9; // rows of w per item
export const M_NNB = 10; // n blocks
export const M_SCRATCH = 11;
export const M_SCRATCH_STRIDE = 12;
export const M_LAYOUT = 13; // LAYOUT_*
export const M_ACC = 14; // 1: out += product (nn, tn)
export const M_WFINITE = 15; // 1: the caller promises an f16 w has no inf/NaN (matvec skips its check)
export const M_NPARTS = 16; // 0: one product; else M_PARTS holds that many (w, out, bias, N) parts sharing x (decode, M < 4)
export const M_PARTS = 17; // byte ptr to the parts table, MP_WORDS u32 per part
export const M_WROWS4 = 18; // 1: an f16/bf16 w is in the rows4 layout (matvec.ts ROWS4), each part's too
// Keys per tile where K and V are widened into scratch (attention.ts sKt, sVt: this many rows each);
// tiles read in place (f32, or f16/bf16 in registers, with 1 or 2 query rows) take A_BK keys.
export const ATTN_WIDE_TILE = 64;
// Floats after each widened w row in an M >= 4 item's scratch when w is rows4 (matmul.ts blockMatmul).
export const SCRATCH_ROWS4_PAD = 16;

// One part of a multi-part decode matmul (KvCache-free: q/k/v or gate/up projections of one x).
export const MP_W = 0;
export const MP_OUT = 1;
export const MP_BIAS = 2;
export const MP_N = 3;
export const MP_FIRST = 4; // first work item of this part; its items are n blocks of M_NB rows
export const MP_WORDS = 5;

export const LAYOUT_NT = 0; // w [N, Kin]
export const LAYOUT_NN = 1; // x [M, Kin], w [Kin, N]
export const LAYOUT_TN = 2; // x [Kin, M], w [Kin, N]

// Activation arguments.
export const E_X = 0; // f32 [n], in place
export const E_Y = 1; // f32 [n] (gated ops)
export const E_N = 2;
export const E_OP = 3; // OP_* in activation.ts
export const E_CHUNK = 4; // values per item

// Training-op arguments (train.ts): the op, the row or value count, the row width, rows or values
// per item, then up to 12 pointers, 8 f32 scalars and 8 i32 values.
export const TR_OP = 0;
export const TR_N = 1;
export const TR_C = 2;
export const TR_CHUNK = 3;
export const TR_P0 = 4; // 4 .. 15
export const TR_F0 = 16; // 16 .. 23
export const TR_I0 = 24; // 24 .. 31

// Probe arguments.
export const P_PTR = 0;
export const P_BYTES = 1;
export const P_CHUNK = 2;
export const P_ITERS = 3;
