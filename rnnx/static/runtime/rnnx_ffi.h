/* The calling convention of TVM's compiled kernels, the part a static step needs (from tvm_ffi's c_api.h
   and dlpack.h): kernel `__tvm_ffi_<name>` takes its arguments as TVMFFIAny values holding DLTensor pointers. */
#ifndef RNNX_FFI_H
#define RNNX_FFI_H
#include <stdint.h>

typedef struct { int32_t device_type, device_id; } DLDevice;
typedef struct { uint8_t code, bits; uint16_t lanes; } DLDataType;
typedef struct {
  void *data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t *shape, *strides;  /* strides NULL: compact row-major */
  uint64_t byte_offset;
} DLTensor;

enum { kDLCPU = 1 };
enum { kTVMFFINone = 0, kTVMFFIInt = 1, kTVMFFIDLTensorPtr = 7 };

typedef struct {
  int32_t type_index;
  uint32_t zero_padding;
  union { int64_t v_int64; double v_float64; void *v_ptr; };
} TVMFFIAny;

typedef int (*TVMFFISafeCallType)(void *self, const TVMFFIAny *args, int32_t num_args, TVMFFIAny *result);
#endif
