// Templated question/answer, pretraining and tool-calling records from fixed word tables.
#include "train/data/synthetic_dataset.h"

#include <array>
#include <fstream>

#include "base/error.h"
#include "tokenizer/python_json.h"
#include "train/data/seed_derivation.h"

namespace bora::train {
namespace {

using tokenizer::OrderedJson;

struct Fact {
  const char* subject;
  const char* answer;
};

// Each category: question templates ({} is the subject) and subject → one-word answer.
struct Category {
  std::array<const char*, 3> templates;
  std::array<Fact, 8> facts;
};

constexpr std::array<Category, 3> kCategories = {{
    {{"What is the capital of {}?", "Name the capital city of {}.", "Capital of {}?"},
     {{{"France", "Paris"},
       {"Italy", "Rome"},
       {"Spain", "Madrid"},
       {"Germany", "Berlin"},
       {"Japan", "Tokyo"},
       {"Egypt", "Cairo"},
       {"Peru", "Lima"},
       {"Canada", "Ottawa"}}}},
    {{"What color is {}?", "Which color does {} have?", "Color of {}?"},
     {{{"a banana", "Yellow"},
       {"grass", "Green"},
       {"the sky", "Blue"},
       {"snow", "White"},
       {"coal", "Black"},
       {"a tomato", "Red"},
       {"a carrot", "Orange"},
       {"a plum", "Purple"}}}},
    {{"What is the opposite of {}?", "Give the opposite of '{}'.", "Opposite of {}?"},
     {{{"hot", "Cold"},
       {"big", "Small"},
       {"fast", "Slow"},
       {"up", "Down"},
       {"day", "Night"},
       {"open", "Closed"},
       {"wet", "Dry"},
       {"old", "New"}}}},
}};

constexpr std::array<const char*, 3> kSystemPrompts = {
    "Answer with one word.", "You are a concise assistant.", "Reply briefly."};

constexpr std::array<const char*, 8> kCities = {"Paris", "Rome",  "Madrid", "Berlin",
                                                "Tokyo", "Cairo", "Lima",   "Ottawa"};
constexpr std::array<const char*, 4> kSkies = {"sunny", "cloudy", "rainy", "windy"};

constexpr std::array<const char*, 6> kAnimals = {"cat", "dog", "bird", "fish", "horse", "cow"};
constexpr std::array<const char*, 5> kColors = {"red", "green", "blue", "white", "black"};
constexpr std::array<const char*, 5> kFoods = {"bread", "apples", "grass", "rice", "seeds"};
constexpr std::array<const char*, 4> kPlaces = {"house", "garden", "barn", "field"};
constexpr std::array<const char*, 4> kNames = {"Anna", "Tom", "Lea", "Max"};

template <typename T, size_t N>
const T& Pick(Xoshiro256& rng, const std::array<T, N>& items) {
  return items[UniformBelow(rng, N)];
}

std::string Fill(const char* pattern, const std::string& value) {
  std::string text = pattern;
  const size_t at = text.find("{}");
  return text.replace(at, 2, value);
}

OrderedJson Message(const char* role, const std::string& content) {
  return OrderedJson{{"role", role}, {"content", content}};
}

std::string CallId(Xoshiro256& rng) {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id;
  for (int i = 0; i < 9; ++i) id += kAlphabet[UniformBelow(rng, sizeof(kAlphabet) - 1)];
  return id;
}

std::string InstructRecord(Xoshiro256& rng) {
  OrderedJson messages = OrderedJson::array();
  const int turns = UniformBelow(rng, 4) == 0 ? 2 : 1;
  for (int turn = 0; turn < turns; ++turn) {
    const Category& category = Pick(rng, kCategories);
    const Fact& fact = Pick(rng, category.facts);
    messages.push_back(Message("user", Fill(Pick(rng, category.templates), fact.subject)));
    messages.push_back(Message("assistant", std::string(fact.answer) + "."));
  }
  OrderedJson record = OrderedJson::object();
  record["messages"] = std::move(messages);
  if (UniformBelow(rng, 5) == 0) record["system_prompt"] = Pick(rng, kSystemPrompts);
  return record.dump();
}

std::string PretrainRecord(Xoshiro256& rng) {
  std::string text;
  const int sentences = 2 + static_cast<int>(UniformBelow(rng, 3));
  for (int i = 0; i < sentences; ++i) {
    const std::string animal = Pick(rng, kAnimals);
    std::string sentence;
    switch (UniformBelow(rng, 4)) {
      case 0:
        sentence = "The " + animal + " is " + Pick(rng, kColors) + ".";
        break;
      case 1:
        sentence = "The " + animal + " eats " + Pick(rng, kFoods) + ".";
        break;
      case 2:
        sentence = std::string(Pick(rng, kNames)) + " has a " + animal + ".";
        break;
      default:
        sentence = "The " + animal + " sleeps in the " + Pick(rng, kPlaces) + ".";
        break;
    }
    text += (i > 0 ? " " : "") + sentence;
  }
  return OrderedJson{{"text", text}}.dump();
}

OrderedJson ToolDefinition(const char* name, const char* description) {
  OrderedJson parameters = {
      {"type", "object"},
      {"properties", {{"city", {{"type", "string"}, {"description", "The city name."}}}}},
      {"required", OrderedJson::array({"city"})}};
  return {{"type", "function"},
          {"function", {{"name", name}, {"description", description}, {"parameters", parameters}}}};
}

std::string ToolsRecord(Xoshiro256& rng) {
  const bool weather = UniformBelow(rng, 2) == 0;
  const std::string city = Pick(rng, kCities);
  const std::string id = CallId(rng);
  OrderedJson messages = OrderedJson::array();
  messages.push_back(Message("user", weather ? "What is the weather in " + city + "?"
                                             : "What time is it in " + city + "?"));
  const OrderedJson call = {{"id", id},
                            {"type", "function"},
                            {"function",
                             {{"name", weather ? "get_weather" : "get_time"},
                              {"arguments", OrderedJson{{"city", city}}.dump()}}}};
  messages.push_back(
      OrderedJson{{"role", "assistant"}, {"tool_calls", OrderedJson::array({call})}});
  if (UniformBelow(rng, 2) == 0) {
    std::string result;
    std::string answer;
    if (weather) {
      const int degrees = 10 + static_cast<int>(UniformBelow(rng, 21));
      const std::string sky = Pick(rng, kSkies);
      result = OrderedJson{{"temperature", degrees}, {"sky", sky}}.dump();
      answer = "It is " + sky + " and " + std::to_string(degrees) + " degrees in " + city + ".";
    } else {
      const int hour = static_cast<int>(UniformBelow(rng, 24));
      // Built with append: GCC 12 flags "literal" + std::string&& with a false -Wrestrict.
      const std::string time = std::string(hour < 10 ? "0" : "").append(std::to_string(hour)).append(":00");
      result = OrderedJson{{"time", time}}.dump();
      answer = "It is " + time + " in " + city + ".";
    }
    messages.push_back(OrderedJson{{"role", "tool"}, {"tool_call_id", id}, {"content", result}});
    messages.push_back(Message("assistant", answer));
  }
  OrderedJson record = OrderedJson::object();
  record["tools"] =
      OrderedJson::array({ToolDefinition("get_weather", "Get the current weather in a city."),
                          ToolDefinition("get_time", "Get the local time in a city.")});
  record["messages"] = std::move(messages);
  return record.dump();
}

}  // namespace

SyntheticKind ParseSyntheticKind(std::string_view name) {
  if (name == "instruct") return SyntheticKind::kInstruct;
  if (name == "pretrain") return SyntheticKind::kPretrain;
  if (name == "tools") return SyntheticKind::kTools;
  throw InvalidArgument("unknown dataset kind '" + std::string(name) +
                        "' (expected instruct, pretrain or tools)");
}

std::string SyntheticKindName(SyntheticKind kind) {
  switch (kind) {
    case SyntheticKind::kInstruct:
      return "instruct";
    case SyntheticKind::kPretrain:
      return "pretrain";
    case SyntheticKind::kTools:
      return "tools";
  }
  return "?";
}

std::string SyntheticRecord(SyntheticKind kind, uint64_t seed, uint64_t index) {
  Xoshiro256 rng = DerivedGenerator(seed, SeedPurpose::kSynthetic, index);
  switch (kind) {
    case SyntheticKind::kInstruct:
      return InstructRecord(rng);
    case SyntheticKind::kPretrain:
      return PretrainRecord(rng);
    case SyntheticKind::kTools:
      return ToolsRecord(rng);
  }
  return "";
}

std::vector<std::string> GenerateSyntheticDataset(SyntheticKind kind, int64_t count,
                                                  uint64_t seed) {
  if (count < 0) throw InvalidArgument("record count must be >= 0");
  std::vector<std::string> records;
  records.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    records.push_back(SyntheticRecord(kind, seed, static_cast<uint64_t>(i)));
  }
  return records;
}

void WriteSyntheticDataset(const std::string& path, SyntheticKind kind, int64_t count,
                           uint64_t seed) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw IoError(path + ": cannot create dataset file");
  for (const auto& record : GenerateSyntheticDataset(kind, count, seed)) out << record << '\n';
  out.flush();
  if (!out) throw IoError(path + ": cannot write dataset file");
}

}  // namespace bora::train
