// A request body kept in an unnamed temporary file instead of memory (rule J1: uploads are
// streamed to disk as they arrive, never buffered whole); read back through a read-only mmap.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace bora::server::http {

class BodySpool {
 public:
  // An unnamed file in `dir` (O_TMPFILE, else a created-and-unlinked one): nothing is visible
  // in `dir` at any time and the space is freed when the spool is destroyed, even after a
  // crash. Throws IoError.
  static std::unique_ptr<BodySpool> Create(const std::string& dir);
  ~BodySpool();
  BodySpool(const BodySpool&) = delete;
  BodySpool& operator=(const BodySpool&) = delete;

  // Writes bytes at the end; throws IoError (e.g. the disk is full).
  void Append(std::string_view bytes);
  size_t size() const { return size_; }
  // The whole body, mapped read-only on first use (Append must not be called after).
  std::string_view View() const;

 private:
  explicit BodySpool(int fd) : fd_(fd) {}

  int fd_ = -1;
  size_t size_ = 0;
  mutable std::once_flag mapped_;
  mutable void* map_ = nullptr;
};

}  // namespace bora::server::http
