// Preorder construction of ByteTrie from sorted byte strings.
#include "runtime/constraint/byte_trie.h"

#include <algorithm>

#include "base/error.h"

namespace bora::runtime::constraint {

ByteTrie::ByteTrie(std::vector<std::pair<std::string, int32_t>> entries) {
  std::sort(entries.begin(), entries.end());
  // open[d] = index of the node at depth d + 1 on the path of the previous string.
  std::vector<int32_t> open;
  const std::string* previous = nullptr;
  for (const auto& [bytes, value] : entries) {
    if (bytes.empty() || bytes.size() > 65535) {
      throw InvalidArgument("byte trie: strings must have 1 to 65535 bytes");
    }
    size_t common = 0;
    if (previous != nullptr) {
      const size_t limit = std::min(previous->size(), bytes.size());
      while (common < limit && (*previous)[common] == bytes[common]) ++common;
    }
    // Close the nodes of the previous path below the common prefix.
    while (open.size() > common) {
      nodes_[open.back()].end = static_cast<int32_t>(nodes_.size());
      open.pop_back();
    }
    for (size_t d = common; d < bytes.size(); ++d) {
      Node node;
      node.byte = static_cast<uint8_t>(bytes[d]);
      node.depth = static_cast<uint16_t>(d + 1);
      node.payload_begin = node.payload_end = static_cast<int32_t>(payload_.size());
      open.push_back(static_cast<int32_t>(nodes_.size()));
      nodes_.push_back(node);
    }
    // Sorted input puts equal strings next to each other, so a node's payload is contiguous.
    Node& last = nodes_[open.back()];
    if (last.payload_end != static_cast<int32_t>(payload_.size())) {
      last.payload_begin = last.payload_end = static_cast<int32_t>(payload_.size());
    }
    payload_.push_back(value);
    last.payload_end = static_cast<int32_t>(payload_.size());
    max_depth_ = std::max(max_depth_, static_cast<int32_t>(bytes.size()));
    previous = &bytes;
  }
  while (!open.empty()) {
    nodes_[open.back()].end = static_cast<int32_t>(nodes_.size());
    open.pop_back();
  }
}

}  // namespace bora::runtime::constraint
