// A SQLite database in WAL mode behind one mutex: the durable state of files and fine-tuning
// jobs, which must survive a server killed at any instant.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

struct sqlite3;

namespace bora::server {

// One SQL value: NULL, INTEGER, REAL or TEXT.
using SqlValue = std::variant<std::nullptr_t, int64_t, double, std::string>;
using SqlRow = std::vector<SqlValue>;

// Readers of a column of a row (NULL reads as the default).
int64_t SqlInt(const SqlValue& value, int64_t otherwise = 0);
double SqlReal(const SqlValue& value, double otherwise = 0);
std::string SqlText(const SqlValue& value);
bool SqlIsNull(const SqlValue& value);

// The wall clock in Unix seconds: every created_at/modified_at the state holds.
int64_t UnixSeconds();

class StateDb {
 public:
  // Opens (creating if needed) the database at `path` in WAL mode with synchronous=NORMAL: a
  // committed transaction survives the process being killed (only power loss can lose the
  // last ones). Throws IoError naming the file.
  explicit StateDb(const std::string& path);
  ~StateDb();
  StateDb(const StateDb&) = delete;
  StateDb& operator=(const StateDb&) = delete;

  // Runs one statement with `?` parameters bound in order. Throws IoError.
  void Exec(const std::string& sql, const std::vector<SqlValue>& params = {});
  // Runs one query; every row, columns in select order. Throws IoError.
  std::vector<SqlRow> Query(const std::string& sql, const std::vector<SqlValue>& params = {});
  // Runs several `;`-separated statements without parameters (schema). Throws IoError.
  void ExecScript(const std::string& sql);
  // Adds `column` (with its SQL `definition`) to `table` when a database from an older bora
  // lacks it. Throws IoError.
  void EnsureColumn(const std::string& table, const std::string& column,
                    const std::string& definition);
  // Runs `body` inside one transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK when it throws),
  // holding the connection for the whole time. A nested call joins the enclosing transaction.
  void Transaction(const std::function<void()>& body);

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
  std::recursive_mutex mutex_;  // one connection, used from HTTP threads and the trainer
  int transaction_depth_ = 0;   // guarded by mutex_
};

}  // namespace bora::server
