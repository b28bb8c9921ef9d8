/* What TVM's runtime would give the kernels, without a heap: their scratch comes from a pool at the end of
   the arena, sized at compile time for the hungriest kernel (RNNX_POOL_BYTES). A kernel frees its scratch
   in the reverse order it took it, so the pool is a stack; its stack pointer lives in the arena too, which
   is all the RAM the model has. */
#include <string.h>
#include "rnnx_model.h"

static uint64_t pool_used(void) {
  uint64_t used;
  memcpy(&used, rnnx_arena + RNNX_POOL_TOP_OFFSET, sizeof used);
  return used;
}

static void set_pool_used(uint64_t used) { memcpy(rnnx_arena + RNNX_POOL_TOP_OFFSET, &used, sizeof used); }

static void *alloc_workspace(int device_type, int device_id, uint64_t nbytes, int dtype_code, int dtype_bits) {
  uint64_t used = pool_used(), n = (nbytes + RNNX_ALIGN - 1) / RNNX_ALIGN * RNNX_ALIGN;
  (void)device_type, (void)device_id, (void)dtype_code, (void)dtype_bits;
  if (n > RNNX_POOL_BYTES - used) return NULL;  /* the kernel fails the step; the pool's size makes this unreachable */
  set_pool_used(used + n);
  return rnnx_arena + RNNX_POOL_OFFSET + used;
}

static int free_workspace(int device_type, int device_id, void *ptr) {
  (void)device_type, (void)device_id;
  set_pool_used((uint64_t)((uint8_t *)ptr - (rnnx_arena + RNNX_POOL_OFFSET)));
  return 0;
}

/* The kernels call these through pointers that TVM's module loader would fill in; here the linker does
   (kernels.o holds weak, empty ones). const: in read-only memory, like the rest but the arena. */
void *(*const __TVMBackendAllocWorkspace)(int, int, uint64_t, int, int) = alloc_workspace;
int (*const __TVMBackendFreeWorkspace)(int, int, void *) = free_workspace;
