// Token bytes, the vocabulary trie and the per-sub-state JSON string tables.
#include "runtime/constraint/token_vocabulary.h"

#include <algorithm>
#include <utility>

#include "base/error.h"

namespace bora::runtime::constraint {

TokenVocabulary::TokenVocabulary(const tokenizer::Tokenizer& tokenizer)
    : eos_id_(tokenizer.eos_id()),
      strips_leading_space_(tokenizer.StripsLeadingSpace()),
      strips_repeated_leading_space_(tokenizer.StripsRepeatedLeadingSpace()) {
  const int32_t n = tokenizer.vocab_size();
  offsets_.reserve(static_cast<size_t>(n) + 1);
  special_.assign(static_cast<size_t>(n), 0);
  in_trie_.assign(static_cast<size_t>(n), 0);
  std::vector<std::pair<std::string, int32_t>> entries;
  entries.reserve(static_cast<size_t>(n));
  const int32_t unk = tokenizer.unk_id();
  offsets_.push_back(0);
  for (int32_t id = 0; id < n; ++id) {
    if (tokenizer.IsSpecial(id)) {
      special_[id] = 1;
    } else if (id != unk) {
      std::string token = tokenizer.TokenBytes(id);
      if (!token.empty() && token.size() <= 65535) {
        bytes_ += token;
        in_trie_[id] = 1;
        entries.emplace_back(std::move(token), id);
      }
    }
    offsets_.push_back(static_cast<uint32_t>(bytes_.size()));
  }
  trie_ = ByteTrie(std::move(entries));
  max_depth_ = trie_.max_depth();
  string_tables_.resize(kStrSubCount);
  for (uint8_t sub = 0; sub < kStrSubCount; ++sub) BuildStringTable(sub);
}

void TokenVocabulary::BuildStringTable(uint8_t sub) {
  StringTokenTable& table = string_tables_[sub];
  table.inside.assign(MaskWords(size()), 0);
  std::vector<std::pair<int32_t, int32_t>> inside;  // (chars, id)
  std::vector<std::pair<std::string, int32_t>> exit_entries;
  for (int32_t id = 0; id < size(); ++id) {
    if (!in_trie_[id]) continue;
    const std::string_view token = bytes(id);
    uint8_t state = sub;
    int32_t chars = 0;
    bool rejected = false;
    size_t quote = std::string_view::npos;
    for (size_t k = 0; k < token.size(); ++k) {
      const JsonStringStep& step = JsonStringTransition(state, static_cast<uint8_t>(token[k]));
      if (step.reject) {
        rejected = true;
        break;
      }
      if (step.closes) {
        quote = k;
        break;
      }
      chars += step.starts ? 1 : 0;
      state = step.next;
    }
    if (rejected) continue;
    if (quote == std::string_view::npos) {
      table.inside[id / 64] |= uint64_t{1} << (id % 64);
      inside.emplace_back(chars, id);
      continue;
    }
    const auto index = static_cast<int32_t>(table.exit_tokens.size());
    table.exit_tokens.push_back(id);
    table.exit_chars.push_back(chars);
    if (quote + 1 == token.size()) {
      table.exits_at_quote.push_back(index);
    } else {
      exit_entries.emplace_back(std::string(token.substr(quote + 1)), index);
    }
  }
  std::sort(inside.begin(), inside.end());
  table.max_chars = inside.empty() ? 0 : inside.back().first;
  table.inside_by_chars.reserve(inside.size());
  table.chars_offsets.assign(static_cast<size_t>(table.max_chars) + 2, 0);
  for (const auto& [chars, id] : inside) {
    table.inside_by_chars.push_back(id);
    ++table.chars_offsets[static_cast<size_t>(chars) + 1];
  }
  for (size_t c = 1; c < table.chars_offsets.size(); ++c) {
    table.chars_offsets[c] += table.chars_offsets[c - 1];
  }
  table.exits = ByteTrie(std::move(exit_entries));
  max_depth_ = std::max(max_depth_, table.exits.max_depth());
}

}  // namespace bora::runtime::constraint
