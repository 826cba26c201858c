// write/fsync/rename/fsync-dir helpers on POSIX file descriptors.
#include "base/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace bora {
namespace {

std::string Reason() { return std::strerror(errno); }

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

void SyncFile(std::FILE* file, const std::string& what) {
  if (std::fflush(file) != 0 || ::fsync(::fileno(file)) != 0) {
    throw IoError(what + ": cannot write to disk: " + Reason());
  }
}

void SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw IoError(dir + ": cannot open the folder to sync it: " + Reason());
  const int result = ::fsync(fd);
  const std::string reason = result != 0 ? Reason() : "";
  ::close(fd);
  if (result != 0) throw IoError(dir + ": cannot sync the folder: " + reason);
}

void RenameDurably(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    throw IoError(to + ": cannot rename " + from + " to it: " + Reason());
  }
  SyncDirectory(ParentOf(to));
}

void WriteFileDurably(const std::string& path, std::string_view data) {
  const std::string partial = path + ".partial";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(partial + ": cannot create: " + Reason());
  std::string failure;
  size_t done = 0;
  while (done < data.size() && failure.empty()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      failure = "cannot write: " + Reason();
    else
      done += static_cast<size_t>(n);
  }
  if (failure.empty() && ::fsync(fd) != 0) failure = "cannot write to disk: " + Reason();
  if (::close(fd) != 0 && failure.empty()) failure = "cannot close: " + Reason();
  if (failure.empty() && std::rename(partial.c_str(), path.c_str()) != 0) {
    failure = "cannot rename into place: " + Reason();
  }
  if (!failure.empty()) {
    ::unlink(partial.c_str());
    throw IoError(path + ": " + failure);
  }
  SyncDirectory(ParentOf(path));
}

}  // namespace bora
