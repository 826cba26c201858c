// Read-only memory mapping of a whole file (MAP_PRIVATE, kept open for the mapping's lifetime).
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace bora {

// Maps a file read-only. A file truncated by another process while mapped can raise SIGBUS;
// model folders are trusted local files, untrusted uploads must be read, not mapped (rule L9).
class MappedFile {
 public:
  // Throws IoError naming the path when the file cannot be opened or mapped.
  static MappedFile Open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  void Release();

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace bora
