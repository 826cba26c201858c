// Uploaded files (`/v1/files`): bytes on disk under the state directory, metadata in SQLite.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "server/finetune/state_db.h"
#include "server/json_body.h"

namespace bora::server {

struct FileRecord {
  std::string id;  // a UUID
  std::string filename;
  std::string purpose;      // "fine-tune"
  std::string sample_type;  // "instruct" or "pretrain"
  std::string mimetype;
  int64_t bytes = 0;
  int64_t created_at = 0;  // Unix seconds
  int64_t num_lines = 0;
  std::string owner;   // who uploaded it: an API-key digest prefix, "" without keys
  std::string sha256;  // of the stored bytes, checked when they are read back
};

// Thrown when an upload would take its owner past the storage quota.
class QuotaExceeded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A random (version 4) UUID, the id of every file and job.
std::string NewUuid();
// Whether `id` has a UUID's shape (36 characters of hex digits and dashes): the only ids that
// ever reach the disk or the database, so no path traversal can come through an id.
bool IsUuid(std::string_view id);

class FileStore {
 public:
  // Creates the table and `dir` when missing. Throws IoError.
  FileStore(StateDb& db, std::string dir);

  // Stores `data` for `owner` (written to a temporary name, synced, renamed, then recorded).
  // Throws QuotaExceeded when the owner's files would exceed `quota_bytes` (0: no quota), and
  // IoError.
  FileRecord Add(const std::string& owner, const std::string& filename, const std::string& purpose,
                 const std::string& mimetype, std::string_view data, const std::string& sample_type,
                 int64_t num_lines, int64_t quota_bytes = 0);
  // The file when it exists and belongs to `owner`.
  std::optional<FileRecord> Get(std::string_view id, const std::string& owner);
  // Bytes stored for `owner`.
  int64_t BytesOf(const std::string& owner);
  // `owner`'s files, newest first; `total` gets the count before paging.
  std::vector<FileRecord> List(const std::string& owner, const std::string& purpose, int64_t page,
                               int64_t page_size, int64_t* total);
  // The stored bytes, checked against their sha256. Throws IoError.
  std::string ReadContent(const FileRecord& file) const;
  // Where the bytes of `id` are (a .jsonl file the training data loader reads).
  std::string PathOf(const std::string& id) const;
  // Removes the record and the bytes; false when there was no such file.
  bool Delete(std::string_view id);

 private:
  StateDb& db_;
  std::string dir_;
};

// The file object both SDKs read: OpenAI's (id, object, bytes, created_at, filename, purpose,
// status) and Mistral's (sample_type, num_lines, source, mimetype).
Json FileJson(const FileRecord& file);

}  // namespace bora::server
