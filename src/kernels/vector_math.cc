// Scalar reference of the elementwise exponential.
#include <cmath>

#include "kernels/vector_math.h"

namespace bora::kernels {

void ExpInPlace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

}  // namespace bora::kernels
