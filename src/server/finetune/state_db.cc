// SQLite access for the server's durable state: prepared statements with bound parameters only
// (no SQL built from request text), WAL journal, one connection behind a mutex.
#include "server/finetune/state_db.h"

#include <sqlite3.h>

#include <chrono>

#include "base/error.h"

namespace bora::server {
namespace {

// Owns one prepared statement.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql, const std::string& path) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &statement_, nullptr) !=
        SQLITE_OK) {
      Fail("prepare");
    }
  }
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void Bind(const std::vector<SqlValue>& params) {
    for (size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i) + 1;
      int rc = SQLITE_OK;
      if (const auto* integer = std::get_if<int64_t>(&params[i])) {
        rc = sqlite3_bind_int64(statement_, index, *integer);
      } else if (const auto* real = std::get_if<double>(&params[i])) {
        rc = sqlite3_bind_double(statement_, index, *real);
      } else if (const auto* text = std::get_if<std::string>(&params[i])) {
        rc = sqlite3_bind_text(statement_, index, text->data(), static_cast<int>(text->size()),
                               SQLITE_TRANSIENT);
      } else {
        rc = sqlite3_bind_null(statement_, index);
      }
      if (rc != SQLITE_OK) Fail("bind");
    }
  }

  // Advances; false when done.
  bool Step() {
    const int rc = sqlite3_step(statement_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    Fail("step");
    return false;
  }

  SqlRow Row() const {
    SqlRow row;
    const int columns = sqlite3_column_count(statement_);
    for (int c = 0; c < columns; ++c) {
      switch (sqlite3_column_type(statement_, c)) {
        case SQLITE_INTEGER:
          row.emplace_back(static_cast<int64_t>(sqlite3_column_int64(statement_, c)));
          break;
        case SQLITE_FLOAT:
          row.emplace_back(sqlite3_column_double(statement_, c));
          break;
        case SQLITE_NULL:
          row.emplace_back(nullptr);
          break;
        default: {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement_, c));
          row.emplace_back(std::string(text != nullptr ? text : "",
                                       static_cast<size_t>(sqlite3_column_bytes(statement_, c))));
        }
      }
    }
    return row;
  }

 private:
  [[noreturn]] void Fail(const char* what) {
    throw IoError(path_ + ": database " + what + " failed: " + sqlite3_errmsg(db_));
  }

  sqlite3* db_;
  const std::string& path_;
  sqlite3_stmt* statement_ = nullptr;
};

}  // namespace

int64_t SqlInt(const SqlValue& value, int64_t otherwise) {
  if (const auto* integer = std::get_if<int64_t>(&value)) return *integer;
  if (const auto* real = std::get_if<double>(&value)) return static_cast<int64_t>(*real);
  return otherwise;
}

double SqlReal(const SqlValue& value, double otherwise) {
  if (const auto* real = std::get_if<double>(&value)) return *real;
  if (const auto* integer = std::get_if<int64_t>(&value)) return static_cast<double>(*integer);
  return otherwise;
}

std::string SqlText(const SqlValue& value) {
  if (const auto* text = std::get_if<std::string>(&value)) return *text;
  return "";
}

bool SqlIsNull(const SqlValue& value) { return std::holds_alternative<std::nullptr_t>(value); }

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

StateDb::StateDb(const std::string& path) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw IoError(path + ": cannot open the state database: " + message);
  }
  sqlite3_busy_timeout(db_, 5000);
  ExecScript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
}

StateDb::~StateDb() { sqlite3_close(db_); }

void StateDb::Exec(const std::string& sql, const std::vector<SqlValue>& params) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Statement statement(db_, sql, path_);
  statement.Bind(params);
  while (statement.Step()) {
  }
}

std::vector<SqlRow> StateDb::Query(const std::string& sql, const std::vector<SqlValue>& params) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  Statement statement(db_, sql, path_);
  statement.Bind(params);
  std::vector<SqlRow> rows;
  while (statement.Step()) rows.push_back(statement.Row());
  return rows;
}

void StateDb::ExecScript(const std::string& sql) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string message = error != nullptr ? error : "unknown error";
    sqlite3_free(error);
    throw IoError(path_ + ": database error: " + message);
  }
}

void StateDb::Transaction(const std::function<void()>& body) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  if (transaction_depth_ > 0) {  // nested: part of the enclosing transaction
    ++transaction_depth_;
    try {
      body();
    } catch (...) {
      --transaction_depth_;
      throw;
    }
    --transaction_depth_;
    return;
  }
  ExecScript("BEGIN IMMEDIATE");
  transaction_depth_ = 1;
  try {
    body();
  } catch (...) {
    transaction_depth_ = 0;
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  transaction_depth_ = 0;
  ExecScript("COMMIT");
}

void StateDb::EnsureColumn(const std::string& table, const std::string& column,
                           const std::string& definition) {
  // Table and column names are ours (never from a request); only values are ever bound.
  for (const SqlRow& row : Query("PRAGMA table_info(" + table + ")")) {
    if (SqlText(row[1]) == column) return;
  }
  Exec("ALTER TABLE " + table + " ADD COLUMN " + column + " " + definition);
}

}  // namespace bora::server
