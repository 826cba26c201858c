// RoPE frequency table: cos/sin of position * theta^(-2i/d) for every position of the context.
#pragma once

#include <cstdint>
#include <vector>

namespace bora::model {

// [positions, head_dim/2, 2] = (cos, sin), with the float32 roundings of mistral-inference's
// precompute_freqs_cis: frequencies and angles in float32, then torch.polar.
std::vector<float> RopeTable(double theta, int64_t head_dim, int64_t positions);

}  // namespace bora::model
