// Prefix tree over byte strings stored in depth-first preorder, so a walk can skip a rejected
// node's whole subtree by jumping to its end index.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace bora::runtime::constraint {

class ByteTrie {
 public:
  struct Node {
    uint8_t byte = 0;           // the byte on the edge into this node
    uint16_t depth = 0;         // 1 for children of the (implicit) root
    int32_t end = 0;            // index one past this node's subtree
    int32_t payload_begin = 0;  // payload of the strings ending here
    int32_t payload_end = 0;
  };

  ByteTrie() = default;
  // `entries`: (non-empty byte string, payload value); duplicates keep every payload.
  // Throws InvalidArgument for an empty string or one longer than 65535 bytes.
  explicit ByteTrie(std::vector<std::pair<std::string, int32_t>> entries);

  std::span<const Node> nodes() const { return nodes_; }
  std::span<const int32_t> payload(const Node& node) const {
    return {payload_.data() + node.payload_begin, payload_.data() + node.payload_end};
  }
  int32_t max_depth() const { return max_depth_; }

 private:
  std::vector<Node> nodes_;
  std::vector<int32_t> payload_;
  int32_t max_depth_ = 0;
};

}  // namespace bora::runtime::constraint
