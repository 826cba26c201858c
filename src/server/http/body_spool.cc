// Unnamed temporary files for request bodies.
#include "server/http/body_spool.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/error.h"

namespace bora::server::http {

std::unique_ptr<BodySpool> BodySpool::Create(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {  // file systems without O_TMPFILE: a named file, unlinked at once
    std::string name = dir + "/.upload-XXXXXX";
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(name.c_str());
  }
  if (fd < 0) throw IoError(dir + ": cannot create a temporary file: " + std::strerror(errno));
  return std::unique_ptr<BodySpool>(new BodySpool(fd));
}

BodySpool::~BodySpool() {
  if (map_ != nullptr) ::munmap(map_, size_);
  if (fd_ >= 0) ::close(fd_);
}

void BodySpool::Append(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw IoError(std::string("cannot store the request body: ") + std::strerror(errno));
    bytes.remove_prefix(static_cast<size_t>(n));
    size_ += static_cast<size_t>(n);
  }
}

std::string_view BodySpool::View() const {
  if (size_ == 0) return {};
  std::call_once(mapped_, [this] {
    void* map = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (map == MAP_FAILED) {
      throw IoError(std::string("cannot map the stored request body: ") + std::strerror(errno));
    }
    ::madvise(map, size_, MADV_SEQUENTIAL);
    map_ = map;
  });
  return {static_cast<const char*>(map_), size_};
}

}  // namespace bora::server::http
