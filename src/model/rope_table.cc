// RoPE frequency table.
#include "model/rope_table.h"

#include <cmath>

namespace bora::model {

std::vector<float> RopeTable(double theta, int64_t head_dim, int64_t positions) {
  const int64_t half = head_dim / 2;
  std::vector<float> frequencies(half);
  for (int64_t i = 0; i < half; ++i) {
    float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    float power = static_cast<float>(std::pow(static_cast<double>(static_cast<float>(theta)), exponent));
    frequencies[i] = 1.0f / power;
  }
  std::vector<float> table(static_cast<size_t>(positions * half * 2));
  for (int64_t pos = 0; pos < positions; ++pos) {
    for (int64_t i = 0; i < half; ++i) {
      float angle = static_cast<float>(pos) * frequencies[i];
      table[(pos * half + i) * 2] = static_cast<float>(std::cos(static_cast<double>(angle)));
      table[(pos * half + i) * 2 + 1] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
  return table;
}

}  // namespace bora::model
