// tests/fuzz/fuzz_common.hpp — what the fuzz targets share: a failed invariant is a finding (abort, so
// libFuzzer saves the input), and an in-memory scratch file for readers that take a path.
#pragma once
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace heed_fuzz {

// A broken invariant: print it and abort, which libFuzzer reports as a crash and saves as crash-<sha1>.
#define FUZZ_CHECK(cond)                                                         \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                              \
    }                                                                            \
  } while (0)

// An in-memory file (memfd_create) for readers that take a path: "/proc/self/fd/<n>". Files on disk would
// be much slower: ext4 flushes a file's data when it is truncated and rewritten, tens of times a second.
class ScratchFile {
 public:
  explicit ScratchFile(const char* name) : fd_(::memfd_create(name, MFD_CLOEXEC)) {
    FUZZ_CHECK(fd_ >= 0);
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~ScratchFile() { ::close(fd_); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  // Replaces the contents with `size` bytes; returns the path.
  const std::string& write(const uint8_t* data, std::size_t size) const {
    FUZZ_CHECK(::ftruncate(fd_, 0) == 0);
    for (std::size_t done = 0; done < size;) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      FUZZ_CHECK(n > 0);
      done += static_cast<std::size_t>(n);
    }
    return path_;
  }
  // Empties the file and returns a new descriptor of it (for gzdopen, which closes it).
  int reopen_empty() const {
    FUZZ_CHECK(::ftruncate(fd_, 0) == 0);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    return fd;
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

}  // namespace heed_fuzz
