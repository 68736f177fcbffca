// framework/io/atomic_file.hpp — the pieces of write_file_atomic (heed/io/safetensors.hpp), internal
// (not installed); tests/test_reliability_inputs.cpp checks them one by one.
#pragma once
#include <string>

namespace heed::io::detail {

// "<path>.tmp.<pid>.<8 hex digits>": a temporary file that names the process writing it, so that a later
// save can tell a killed writer's leftover from a save in progress.
std::string temporary_name(const std::string& path);

// Removes "<path>.tmp.<pid>[.<hex>]" files whose process no longer exists (kill(pid, 0) fails with
// ESRCH): what a save killed before its rename leaves behind. Files of running processes (this one
// included), and names that do not follow the pattern, are left alone. Returns how many were removed.
int remove_stale_temporaries(const std::string& path);

// fsync(fd), then close(fd) whatever fsync returned; throws heed::Error naming `what` when either failed.
void sync_and_close(int fd, const std::string& what);

// fsync on the directory that holds `path`, so that a rename into it survives a power failure. File
// systems that cannot sync a directory (EINVAL) are accepted; other failures throw.
void sync_directory_of(const std::string& path);

}  // namespace heed::io::detail
