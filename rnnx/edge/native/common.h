// What both native programs share: memory figures from /proc, and a main that turns an exception into one
// line on stderr and exit code 2.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>

// A field of /proc/self/status in kB (VmRSS: resident now, VmHWM: its peak), or -1 where absent.
// VmHWM, not getrusage's ru_maxrss: the latter carries over exec from the forked parent (a Python process
// of hundreds of MB starting us). Under qemu-user these are the emulator's, which includes the program's.
inline long StatusKb(const char* field) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(field, 0) == 0 && line[std::strlen(field)] == ':') return std::atol(line.c_str() + std::strlen(field) + 1);
  return -1;
}

// `run(argc, argv)`, with any exception reported as "name: what" and exit code 2.
inline int MainOf(const char* name, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 2;
  }
}
