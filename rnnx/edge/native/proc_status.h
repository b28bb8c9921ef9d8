// A field of /proc/self/status in kB (VmRSS: resident now, VmHWM: its peak), or -1 where absent.
// VmHWM, not getrusage's ru_maxrss: the latter carries over exec from the forked parent (a Python process
// of hundreds of MB starting us). Under qemu-user these are the emulator's, which includes the program's.
#pragma once
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

inline long StatusKb(const char* field) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(field, 0) == 0 && line[std::strlen(field)] == ':') return std::atol(line.c_str() + std::strlen(field) + 1);
  return -1;
}
