// rnnx-run: stream a model's inputs (tokens or feature vectors) through a compiled artifact on a board, with
// TVM's C++ runtime and no Python.
//
//   bin/rnnx-run INPUTS OUTPUTS [--prefill N] [--threads N]
//
// The artifact is this program's directory's parent (the bundle layout: bin/, lib/, step.so, ...).
// input.txt: the step's first input, "name dtype B 1 [C]": int64 tokens (B, 1) or float32 features (B, 1, C).
// INPUTS: that dtype, little-endian, batch-major (B, T) or (B, T, C). The first N steps go through prefill.so
// in one call, the rest through step.so one at a time; the step's arguments are (input, *state, workspace),
// with the workspace from `main_workspace()` when the step has one, and the kernels update the state in
// place. OUTPUTS: float32 (T, B, N), the logits (or scores, or forecast) after each step, written as they
// come so that memory does not grow with T.
// state.txt: one line per state tensor, "name dtype d0 d1 ...", in artifact.json's order, whose raw bytes
// are concatenated in initial_state.bin. Prints one JSON line: steps, step latency p50/p95 (µs), prefill
// steps and steps/s (0 without prefill), the process's peak resident memory (kB, VmHWM).
#include <dlpack/dlpack.h>
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/dtype.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.h"

namespace ffi = tvm::ffi;
using ffi::Tensor;

namespace {

const DLDevice kCPU{kDLCPU, 0};
constexpr int kPooledAllocator = 2;  // tvm.runtime.vm.VirtualMachine.POOLED_ALLOCATOR

// Host memory for tensors, aligned as TVM's kernels assume (the wheels ship no tvm/runtime/tensor.h
// dependencies, so tensors are made with TVM FFI's headers alone).
struct AlignedAlloc {
  void AllocData(DLTensor* t) {
    t->data = std::aligned_alloc(64, (ffi::GetDataSize(*t) + 63) / 64 * 64);
    if (!t->data) throw std::bad_alloc();
  }
  void FreeData(DLTensor* t) { std::free(t->data); }
};

Tensor Empty(std::vector<int64_t> shape, DLDataType dtype) {
  return Tensor::FromNDAlloc(AlignedAlloc(), ffi::Shape(shape), dtype, kCPU);
}

size_t Bytes(const Tensor& t) { return ffi::GetDataSize(t); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A compiled graph: its VM's `main` and the extra arguments it takes after the inputs.
struct Graph {
  ffi::Function main;
  std::vector<ffi::Any> workspace;
  std::vector<ffi::AnyView> args;  // kept between calls: a step allocates no argument list

  explicit Graph(const std::string& library) {
    ffi::Module executable = ffi::Module::LoadFromFile(library);
    ffi::Module vm = executable->GetFunction("vm_load_executable").value()().cast<ffi::Module>();
    vm->GetFunction("vm_initialization").value()(static_cast<int>(kDLCPU), 0, kPooledAllocator);
    main = vm->GetFunction("main").value();
    if (auto make = vm->GetFunction("main_workspace")) workspace.push_back((*make)());
  }

  // main(input, *state, *workspace): the state tensors are updated in place; returns the outputs.
  Tensor operator()(const Tensor& input, const std::vector<Tensor>& state) {
    args.assign(1, input);
    for (const Tensor& s : state) args.emplace_back(s);
    for (const ffi::Any& w : workspace) args.emplace_back(w);
    ffi::Any result;
    main.CallPacked(args.data(), static_cast<int32_t>(args.size()), &result);
    return result.cast<ffi::Array<ffi::Any>>()[0].cast<Tensor>();
  }
};

// A line of state.txt or input.txt, "name dtype d0 d1 ...": a tensor's dtype and shape.
struct Layout {
  DLDataType dtype;
  std::vector<int64_t> shape;

  explicit Layout(const std::string& line) {
    std::istringstream fields(line);
    std::string name, type;
    fields >> name >> type;
    dtype = ffi::StringToDLDataType(type);
    shape.assign(std::istream_iterator<int64_t>(fields), {});
  }
};

// The state as state.txt describes it, with initial_state.bin's bytes.
std::vector<Tensor> InitialState(const std::string& dir) {
  std::istringstream layout(ReadFile(dir + "/state.txt"));
  std::string bytes = ReadFile(dir + "/initial_state.bin"), line;
  std::vector<Tensor> state;
  size_t offset = 0;
  while (std::getline(layout, line)) {
    Layout tensor(line);
    Tensor t = Empty(tensor.shape, tensor.dtype);
    if (offset + Bytes(t) > bytes.size()) throw std::runtime_error("initial_state.bin is shorter than state.txt says");
    std::memcpy(t.data_ptr(), bytes.data() + offset, Bytes(t));
    offset += Bytes(t);
    state.push_back(t);
  }
  if (offset != bytes.size()) throw std::runtime_error("initial_state.bin is longer than state.txt says");
  return state;
}

// The program's inputs, (B, T, ...) of the step input's dtype: a token or a feature vector per step.
struct Inputs {
  Layout step;         // (B, 1, ...): what one step takes
  std::string bytes;   // batch-major, as read
  int64_t batch, row;  // row: the bytes of one sequence's step
  int64_t length;      // T

  Inputs(const std::string& dir, const std::string& path)
      : step(ReadFile(dir + "/input.txt")), bytes(ReadFile(path)), batch(step.shape.at(0)) {
    row = step.dtype.bits / 8 *
          std::accumulate(step.shape.begin() + 2, step.shape.end(), int64_t{1}, std::multiplies<>());
    length = static_cast<int64_t>(bytes.size()) / (batch * row);
    if (length * batch * row != static_cast<int64_t>(bytes.size()))
      throw std::runtime_error(path + " is not " + std::string(ffi::DLDataTypeToString(step.dtype)) + " (" +
                               std::to_string(batch) + ", T" +
                               (step.shape.size() > 2 ? ", " + std::to_string(step.shape[2]) : "") + ")");
  }

  // Steps [begin, end) of every sequence, as a (B, end - begin, ...) tensor.
  Tensor Steps(int64_t begin, int64_t end) const {
    std::vector<int64_t> shape = step.shape;
    shape[1] = end - begin;
    Tensor t = Empty(shape, step.dtype);
    Copy(t, begin, end);
    return t;
  }

  // Steps [begin, end) into `t`, a tensor of (B, end - begin, ...).
  void Copy(const Tensor& t, int64_t begin, int64_t end) const {
    auto* out = static_cast<char*>(t.data_ptr());
    for (int64_t b = 0; b < batch; ++b)
      std::memcpy(out + b * (end - begin) * row, bytes.data() + (b * length + begin) * row, (end - begin) * row);
  }
};

// Outputs (B, n, N) written as n rows of (B, N): the file is (T, B, N) whatever the graph.
void WriteOutputs(std::FILE* out, const Tensor& outputs) {
  int64_t batch = outputs.size(0), n = outputs.size(1), width = outputs.size(2);
  const DLTensor* view = outputs.GetDLTensorPtr();  // a workspace view may start inside its storage
  const auto* data = reinterpret_cast<const float*>(static_cast<const char*>(view->data) + view->byte_offset);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < batch; ++b) std::fwrite(data + (b * n + i) * width, sizeof(float), width, out);
}

double Percentile(std::vector<double> v, double q) {  // numpy's default (linear) interpolation
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double pos = q * (v.size() - 1);
  size_t lo = static_cast<size_t>(pos);
  return lo + 1 < v.size() ? v[lo] + (pos - lo) * (v[lo + 1] - v[lo]) : v[lo];
}

double Seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int Run(int argc, char** argv) {
  std::vector<std::string> positional;
  int64_t prefill = 0;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--prefill" && has_value) prefill = std::atoll(argv[++i]);
    else if (a == "--threads" && has_value) threads = std::atoi(argv[++i]);
    else if (a.rfind("--", 0) == 0) throw std::runtime_error("unknown option " + a);
    else positional.push_back(a);
  }
  if (positional.size() != 2) throw std::runtime_error("usage: rnnx-run INPUTS OUTPUTS [--prefill N] [--threads N]");
  std::string self = argv[0], dir = self.substr(0, self.find_last_of('/') + 1) + "..";
  if (threads > 0) {
    // TVM sizes its pool once, from this variable, and can later use fewer workers but not more
    setenv("TVM_NUM_THREADS", std::to_string(threads).c_str(), 1);
    ffi::Function::GetGlobalRequired("runtime.config_threadpool")(1, threads);
  }

  std::vector<Tensor> state = InitialState(dir);
  const Inputs inputs(dir, positional[0]);
  int64_t length = inputs.length;
  if (prefill < 0 || prefill > length) throw std::runtime_error("--prefill must be between 0 and the number of steps");
  std::FILE* out = std::fopen(positional[1].c_str(), "wb");
  if (!out) throw std::runtime_error("cannot write " + positional[1]);

  double prefill_steps_per_s = 0;
  if (prefill > 0) {
    Graph graph(dir + "/prefill.so");
    graph(inputs.Steps(0, std::min<int64_t>(prefill, 8)), state);  // warm-up: first calls set up pools
    state = InitialState(dir);
    double start = Seconds();
    Tensor outputs = graph(inputs.Steps(0, prefill), state);
    prefill_steps_per_s = prefill / (Seconds() - start);
    WriteOutputs(out, outputs);
  }

  Graph step(dir + "/step.so");
  Tensor input = Empty(inputs.step.shape, inputs.step.dtype);
  std::vector<double> latencies_us;
  latencies_us.reserve(length - prefill);
  for (int64_t t = prefill; t < length; ++t) {
    double start = Seconds();
    inputs.Copy(input, t, t + 1);
    Tensor outputs = step(input, state);
    latencies_us.push_back((Seconds() - start) * 1e6);
    WriteOutputs(out, outputs);
  }
  if (std::fclose(out) != 0) throw std::runtime_error("cannot write " + positional[1]);

  std::printf("{\"steps\": %zu, \"step_us_p50\": %.3f, \"step_us_p95\": %.3f, \"prefill_tokens\": %lld, "
              "\"prefill_tokens_per_s\": %.1f, \"max_rss_kb\": %ld}\n",
              latencies_us.size(), Percentile(latencies_us, 0.5), Percentile(latencies_us, 0.95),
              static_cast<long long>(prefill), prefill_steps_per_s, StatusKb("VmHWM"));
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return MainOf("rnnx-run", Run, argc, argv); }
