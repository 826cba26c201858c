// The file store behind /v1/files: UUID-named files in STATE/files, rows in the `files` table.
#include "server/finetune/file_store.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "base/durable_file.h"
#include "base/error.h"
#include "base/sha256.h"

namespace bora::server {
namespace {

namespace fs = std::filesystem;

FileRecord FromRow(const SqlRow& row) {
  FileRecord file;
  file.id = SqlText(row[0]);
  file.filename = SqlText(row[1]);
  file.purpose = SqlText(row[2]);
  file.sample_type = SqlText(row[3]);
  file.mimetype = SqlText(row[4]);
  file.bytes = SqlInt(row[5]);
  file.created_at = SqlInt(row[6]);
  file.num_lines = SqlInt(row[7]);
  file.owner = SqlText(row[8]);
  file.sha256 = SqlText(row[9]);
  return file;
}

constexpr const char* kColumns =
    "id, filename, purpose, sample_type, mimetype, bytes, created_at, num_lines, owner, sha256";

}  // namespace

std::string NewUuid() {
  std::random_device device;
  std::mt19937_64 random((static_cast<uint64_t>(device()) << 32) ^ device());
  uint64_t high = random(), low = random();
  high = (high & ~uint64_t{0xf000}) | 0x4000;                // version 4
  low = (low & ~(uint64_t{3} << 62)) | (uint64_t{2} << 62);  // RFC 4122 variant
  char text[37];
  std::snprintf(text, sizeof(text), "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(high >> 32), static_cast<unsigned>((high >> 16) & 0xffff),
                static_cast<unsigned>(high & 0xffff), static_cast<unsigned>(low >> 48),
                static_cast<unsigned long long>(low & 0xffffffffffffull));
  return text;
}

bool IsUuid(std::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

FileStore::FileStore(StateDb& db, std::string dir) : db_(db), dir_(std::move(dir)) {
  std::error_code error;
  fs::create_directories(dir_, error);
  if (error) throw IoError(dir_ + ": cannot create the file store folder: " + error.message());
  db_.ExecScript(
      "CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, filename TEXT NOT NULL, "
      "purpose TEXT NOT NULL, sample_type TEXT NOT NULL, mimetype TEXT NOT NULL, "
      "bytes INTEGER NOT NULL, created_at INTEGER NOT NULL, num_lines INTEGER NOT NULL)");
  db_.EnsureColumn("files", "owner", "TEXT NOT NULL DEFAULT ''");
  db_.EnsureColumn("files", "sha256", "TEXT NOT NULL DEFAULT ''");
  // Bytes written by an upload that never got its row (the server was killed in between).
  for (const auto& entry : fs::directory_iterator(dir_, error)) {
    if (entry.path().extension() == ".partial") fs::remove(entry.path(), error);
  }
}

std::string FileStore::PathOf(const std::string& id) const { return dir_ + "/" + id + ".jsonl"; }

int64_t FileStore::BytesOf(const std::string& owner) {
  return SqlInt(
      db_.Query("SELECT COALESCE(SUM(bytes), 0) FROM files WHERE owner = ?", {owner})[0][0]);
}

FileRecord FileStore::Add(const std::string& owner, const std::string& filename,
                          const std::string& purpose, const std::string& mimetype,
                          std::string_view data, const std::string& sample_type, int64_t num_lines,
                          int64_t quota_bytes) {
  if (quota_bytes > 0) {
    const int64_t used = BytesOf(owner);
    if (used + static_cast<int64_t>(data.size()) > quota_bytes) {
      throw QuotaExceeded("storage quota exceeded: this key stores " + std::to_string(used) +
                          " bytes, this file adds " + std::to_string(data.size()) +
                          ", the quota is " + std::to_string(quota_bytes) +
                          " (--upload-quota); delete files with DELETE /v1/files/{id}");
    }
  }
  FileRecord file;
  file.owner = owner;
  file.sha256 = Sha256Hex(data);
  file.id = NewUuid();
  file.filename = filename;
  file.purpose = purpose;
  file.sample_type = sample_type;
  file.mimetype = mimetype;
  file.bytes = static_cast<int64_t>(data.size());
  file.created_at = UnixSeconds();
  file.num_lines = num_lines;
  const std::string path = PathOf(file.id);
  try {
    WriteFileDurably(path, data);
  } catch (const IoError& error) {
    throw IoError(std::string(error.what()) + " (the uploaded file was not stored)");
  }
  db_.Exec(
      std::string("INSERT INTO files (") + kColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      {file.id, file.filename, file.purpose, file.sample_type, file.mimetype, file.bytes,
       file.created_at, file.num_lines, file.owner, file.sha256});
  return file;
}

std::optional<FileRecord> FileStore::Get(std::string_view id, const std::string& owner) {
  if (!IsUuid(id)) return std::nullopt;
  const auto rows =
      db_.Query(std::string("SELECT ") + kColumns + " FROM files WHERE id = ? AND owner = ?",
                {std::string(id), owner});
  if (rows.empty()) return std::nullopt;
  return FromRow(rows[0]);
}

std::vector<FileRecord> FileStore::List(const std::string& owner, const std::string& purpose,
                                        int64_t page, int64_t page_size, int64_t* total) {
  const auto count =
      db_.Query("SELECT COUNT(*) FROM files WHERE owner = ? AND (? = '' OR purpose = ?)",
                {owner, purpose, purpose});
  *total = SqlInt(count[0][0]);
  std::vector<FileRecord> files;
  for (const SqlRow& row : db_.Query(std::string("SELECT ") + kColumns +
                                         " FROM files WHERE owner = ? AND (? = '' OR purpose = ?)"
                                         " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                                     {owner, purpose, purpose, page_size, page * page_size})) {
    files.push_back(FromRow(row));
  }
  return files;
}

std::string FileStore::ReadContent(const FileRecord& file) const {
  std::ifstream in(PathOf(file.id), std::ios::binary);
  if (!in) throw IoError("the bytes of file " + file.id + " are missing from " + dir_);
  std::string content(static_cast<size_t>(file.bytes), '\0');
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  if (in.gcount() != static_cast<std::streamsize>(content.size())) {
    throw IoError("the bytes of file " + file.id + " in " + dir_ + " are truncated");
  }
  if (!file.sha256.empty() && Sha256Hex(content) != file.sha256) {
    throw IoError("the bytes of file " + file.id + " in " + dir_ +
                  " changed on disk since the upload (sha256 mismatch)");
  }
  return content;
}

bool FileStore::Delete(std::string_view id) {
  if (!IsUuid(id) || db_.Query("SELECT 1 FROM files WHERE id = ?", {std::string(id)}).empty()) {
    return false;
  }
  db_.Exec("DELETE FROM files WHERE id = ?", {std::string(id)});
  std::error_code error;
  fs::remove(PathOf(std::string(id)), error);
  return true;
}

Json FileJson(const FileRecord& file) {
  return {{"id", file.id},
          {"object", "file"},
          {"bytes", file.bytes},
          {"created_at", file.created_at},
          {"filename", file.filename},
          {"purpose", file.purpose},
          {"sample_type", file.sample_type},
          {"num_lines", file.num_lines},
          {"mimetype", file.mimetype},
          {"source", "upload"},
          {"status", "processed"}};
}

}  // namespace bora::server
