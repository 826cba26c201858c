// Crash-safe file writes (rule J4): data reaches the disk (fsync) before the rename that
// publishes it, and the folder is synced after, so readers see the old file or the whole new
// one, after a kill or a power loss alike.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace bora {

// Writes `data` to `path` through `path`.partial: write, fsync, rename, fsync of the folder.
// Throws IoError naming the file and the system's reason (e.g. "No space left on device");
// the partial file is removed and an earlier `path` is left as it was.
void WriteFileDurably(const std::string& path, std::string_view data);

// fflush + fsync of an open stdio file; throws IoError naming `what`.
void SyncFile(std::FILE* file, const std::string& what);

// fsync of a folder, which makes the names created or renamed in it durable.
void SyncDirectory(const std::string& dir);

// rename(from, to), then fsync of the folder holding `to`.
void RenameDurably(const std::string& from, const std::string& to);

}  // namespace bora
