// The durable state of the fine-tuning API: files and jobs in SQLite survive reopening, job
// events and checkpoints are logged in order, a resumed run forgets what it redoes, a restart
// re-queues interrupted jobs, and the JSON carries the fields the Mistral SDK requires.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "base/error.h"
#include "base/sha256.h"
#include "server/finetune/file_store.h"
#include "server/finetune/job_store.h"
#include "server/finetune/state_db.h"
#include "server/finetune/training_worker.h"
#include "testdata.h"

namespace bora::server {
namespace {

JobRecord NewJob(const std::string& model, const std::string& file_id, int64_t created_at) {
  JobRecord job;
  job.id = NewUuid();
  job.model = model;
  job.status = job_status::kQueued;
  job.created_at = job.modified_at = created_at;
  job.suffix = "s1";
  job.hyperparameters = {{"training_steps", 10}, {"learning_rate", 1e-4}, {"epochs", nullptr},
                         {"seq_len", 128},       {"weight_decay", 0.1},   {"warmup_fraction", 0.05},
                         {"fim_ratio", nullptr}};
  job.training_files = {{file_id, 2.0}};
  return job;
}

TEST(FineTuningStoreTest, UuidsAreRandomVersion4AndCheckedStrictly) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string id = NewUuid();
    EXPECT_TRUE(IsUuid(id)) << id;
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_TRUE(std::string("89ab").find(id[19]) != std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("../../../../etc/passwd"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-12d3-a456-42661417400/"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-12d3-a456-4266141740000"));
  EXPECT_FALSE(IsUuid("123e4567xe89b-12d3-a456-426614174000"));
  EXPECT_TRUE(IsUuid("123E4567-E89B-12D3-A456-426614174000"));
}

TEST(FineTuningStoreTest, FilesSurviveReopeningAndDeleteRemovesTheBytes) {
  testing::TempDir dir;
  const std::string db_path = dir.path() + "/state.db";
  std::string id;
  {
    StateDb db(db_path);
    FileStore files(db, dir.path() + "/files");
    const FileRecord file = files.Add("", "train.jsonl", "fine-tune", "application/jsonl",
                                      std::string("{\"text\": \"a\"}\n\0x", 16), "pretrain", 1);
    id = file.id;
    EXPECT_EQ(file.bytes, 16);
    EXPECT_TRUE(std::filesystem::exists(files.PathOf(id)));
  }
  StateDb db(db_path);
  FileStore files(db, dir.path() + "/files");
  const std::optional<FileRecord> file = files.Get(id, "");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->filename, "train.jsonl");
  EXPECT_EQ(file->sample_type, "pretrain");
  EXPECT_EQ(files.ReadContent(*file), std::string("{\"text\": \"a\"}\n\0x", 16));
  const Json json = FileJson(*file);
  for (const char* key : {"id", "object", "bytes", "created_at", "filename", "purpose",
                          "sample_type", "num_lines", "source"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_EQ(json["object"], "file");
  EXPECT_FALSE(files.Get("not-a-uuid", ""));
  EXPECT_FALSE(files.Get(NewUuid(), ""));

  files.Add("", "second.jsonl", "fine-tune", "application/jsonl", "{}", "instruct", 1);
  int64_t total = 0;
  EXPECT_EQ(files.List("", "", 0, 1, &total).size(), 1u);
  EXPECT_EQ(total, 2);
  EXPECT_EQ(files.List("", "fine-tune", 1, 1, &total).size(), 1u);
  EXPECT_EQ(files.List("", "batch", 0, 10, &total).size(), 0u);
  EXPECT_EQ(total, 0);

  EXPECT_TRUE(files.Delete(id));
  EXPECT_FALSE(files.Delete(id));
  EXPECT_FALSE(std::filesystem::exists(files.PathOf(id)));
  EXPECT_FALSE(files.Get(id, ""));
}

TEST(FineTuningStoreTest, OwnersSeeOnlyTheirFilesWithinTheirQuota) {
  testing::TempDir dir;
  StateDb db(dir.path() + "/state.db");
  FileStore files(db, dir.path() + "/files");
  const std::string data(600, 'x');
  const FileRecord a = files.Add("key a", "a.jsonl", "fine-tune", "application/jsonl", data,
                                 "instruct", 1, /*quota_bytes=*/1000);
  EXPECT_EQ(a.sha256, Sha256Hex(data));
  EXPECT_TRUE(files.Get(a.id, "key a"));
  EXPECT_FALSE(files.Get(a.id, "key b"));  // another tenant: as if it did not exist
  EXPECT_FALSE(files.Get(a.id, ""));
  int64_t total = 0;
  EXPECT_EQ(files.List("key b", "", 0, 10, &total).size(), 0u);
  EXPECT_EQ(files.List("key a", "", 0, 10, &total).size(), 1u);
  // 600 + 600 > 1000 for key a; key b has its own quota.
  EXPECT_THROW(
      files.Add("key a", "b.jsonl", "fine-tune", "application/jsonl", data, "instruct", 1, 1000),
      QuotaExceeded);
  EXPECT_NO_THROW(
      files.Add("key b", "b.jsonl", "fine-tune", "application/jsonl", data, "instruct", 1, 1000));
  EXPECT_EQ(files.BytesOf("key a"), 600);
  // Bytes changed on disk behind the database's back are refused when read.
  {
    std::ofstream out(files.PathOf(a.id), std::ios::binary | std::ios::trunc);
    out << std::string(600, 'y');
  }
  EXPECT_THROW(files.ReadContent(*files.Get(a.id, "key a")), IoError);
}

TEST(FineTuningStoreTest, PartialUploadsAreRemovedAtOpen) {
  testing::TempDir dir;
  StateDb db(dir.path() + "/state.db");
  std::filesystem::create_directories(dir.path() + "/files");
  std::ofstream(dir.path() + "/files/x.jsonl.partial") << "half";
  FileStore files(db, dir.path() + "/files");
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/files/x.jsonl.partial"));
}

TEST(FineTuningStoreTest, JobLifecycleEventsCheckpointsAndJson) {
  testing::TempDir dir;
  StateDb db(dir.path() + "/state.db");
  JobStore jobs(db);
  const std::string file_id = NewUuid();
  JobRecord job = NewJob("tiny", file_id, 1000);
  jobs.Create(job);

  EXPECT_EQ(jobs.UnfinishedJobsUsing(file_id), std::vector<std::string>{job.id});
  EXPECT_TRUE(jobs.UnfinishedJobsUsing(NewUuid()).empty());
  ASSERT_TRUE(jobs.NextQueued());
  EXPECT_EQ(jobs.NextQueued()->id, job.id);

  jobs.SetStatus(job.id, job_status::kRunning);
  EXPECT_FALSE(jobs.NextQueued());
  for (int step = 1; step <= 4; ++step) {
    jobs.AddMetrics(job.id, step, {{"step", step}, {"train_loss", 5.0 - step}}, step * 128);
    if (step % 2 == 0) jobs.AddCheckpoint(job.id, step, {{"train_loss", 5.0 - step}});
  }
  // A resume from step 2 forgets steps 3 and 4.
  jobs.ForgetAfter(job.id, 2);
  std::vector<int64_t> steps;
  for (const JobEvent& event : jobs.Events(job.id)) {
    if (event.name == "metrics") steps.push_back(event.data["step"].get<int64_t>());
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(jobs.Checkpoints(job.id).size(), 1u);
  EXPECT_EQ(jobs.Checkpoints(job.id)[0].step, 2);

  jobs.Succeed(job.id, "ft:tiny:s1:" + job.id.substr(0, 8), dir.path() + "/adapter");
  const std::optional<JobRecord> done = jobs.Get(job.id);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, job_status::kSuccess);
  EXPECT_EQ(done->trained_tokens, 4 * 128);
  EXPECT_TRUE(done->finished_at.has_value());
  EXPECT_EQ(done->adapter_dir, dir.path() + "/adapter");
  EXPECT_EQ(done->training_files.size(), 1u);
  EXPECT_EQ(done->training_files[0].weight, 2.0);
  EXPECT_TRUE(jobs.UnfinishedJobsUsing(file_id).empty());
  EXPECT_EQ(FineTunedModelName(*done), "ft:tiny:s1:" + job.id.substr(0, 8));

  std::vector<std::string> statuses;
  for (const JobEvent& event : jobs.Events(job.id)) {
    if (event.name == "status-updated") statuses.push_back(event.data["status"]);
  }
  EXPECT_EQ(statuses, (std::vector<std::string>{"QUEUED", "RUNNING", "SUCCESS"}));

  const Json json = DetailedJobJson(*done, jobs.Events(job.id), jobs.Checkpoints(job.id));
  for (const char* key : {"id", "auto_start", "model", "status", "created_at", "modified_at",
                          "training_files", "hyperparameters", "events", "checkpoints"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_EQ(json["job_type"], "completion");
  EXPECT_EQ(json["object"], "job");
  EXPECT_EQ(json["fine_tuned_model"], *done->fine_tuned_model);
  EXPECT_TRUE(json["hyperparameters"]["learning_rate"].is_number());
  EXPECT_EQ(json["checkpoints"][0]["step_number"], 2);
  EXPECT_TRUE(json["error"].is_null());
}

TEST(FineTuningStoreTest, ListFiltersAndPagesNewestFirst) {
  testing::TempDir dir;
  StateDb db(dir.path() + "/state.db");
  JobStore jobs(db);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    JobRecord job = NewJob(i < 3 ? "a" : "b", NewUuid(), 1000 + i);
    jobs.Create(job);
    ids.push_back(job.id);
  }
  jobs.SetStatus(ids[0], job_status::kFailed, {}, "out of memory");
  int64_t total = 0;
  JobFilter filter;
  std::vector<JobRecord> all = jobs.List(filter, &total);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(total, 5);
  EXPECT_EQ(all[0].id, ids[4]);
  filter.model = "a";
  EXPECT_EQ(jobs.List(filter, &total).size(), 3u);
  filter.status = job_status::kFailed;
  const std::vector<JobRecord> failed = jobs.List(filter, &total);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].error, "out of memory");
  EXPECT_EQ(JobJson(failed[0])["error"]["message"], "out of memory");
  filter = JobFilter();
  filter.created_after = 1003;
  EXPECT_EQ(jobs.List(filter, &total).size(), 2u);
  filter = JobFilter();
  filter.page = 1;
  filter.page_size = 2;
  const std::vector<JobRecord> page = jobs.List(filter, &total);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id, ids[2]);
  EXPECT_EQ(total, 5);
}

TEST(FineTuningStoreTest, RestartRequeuesRunningJobsAndFinishesCancellations) {
  testing::TempDir dir;
  std::string running, starting, cancelling, queued;
  {
    StateDb db(dir.path() + "/state.db");
    JobStore jobs(db);
    for (std::string* id : {&running, &starting, &cancelling, &queued}) {
      JobRecord job = NewJob("tiny", NewUuid(), 1000);
      jobs.Create(job);
      *id = job.id;
    }
    jobs.SetStatus(running, job_status::kRunning);
    jobs.SetStatus(starting, job_status::kStarted);
    jobs.SetStatus(cancelling, job_status::kCancellationRequested);
  }
  StateDb db(dir.path() + "/state.db");
  JobStore jobs(db);
  EXPECT_EQ(jobs.RecoverInterrupted(), 2);
  EXPECT_EQ(jobs.Get(running)->status, job_status::kQueued);
  EXPECT_EQ(jobs.Get(starting)->status, job_status::kQueued);
  EXPECT_EQ(jobs.Get(cancelling)->status, job_status::kCancelled);
  EXPECT_EQ(jobs.Get(queued)->status, job_status::kQueued);
  EXPECT_EQ(jobs.RecoverInterrupted(), 0);
}

TEST(FineTuningStoreTest, FailedTransactionLeavesNothingBehind) {
  testing::TempDir dir;
  StateDb db(dir.path() + "/state.db");
  db.ExecScript("CREATE TABLE t (x INTEGER)");
  EXPECT_THROW(db.Transaction([&] {
    db.Exec("INSERT INTO t VALUES (?)", {int64_t{1}});
    db.Transaction([&] { db.Exec("INSERT INTO t VALUES (?)", {int64_t{2}}); });
    throw IoError("disk full");
  }),
               IoError);
  EXPECT_EQ(SqlInt(db.Query("SELECT COUNT(*) FROM t")[0][0]), 0);
  EXPECT_THROW(db.Exec("INSERT INTO missing VALUES (1)"), IoError);
  // Text is bound, never spliced into SQL.
  db.Exec("INSERT INTO t VALUES (?)", {std::string("1); DROP TABLE t; --")});
  EXPECT_EQ(SqlInt(db.Query("SELECT COUNT(*) FROM t")[0][0]), 1);
}

TEST(FineTuningStoreTest, UnopenableDatabaseIsAnIoError) {
  EXPECT_THROW(StateDb("/proc/definitely/not/here/state.db"), IoError);
}

}  // namespace
}  // namespace bora::server
