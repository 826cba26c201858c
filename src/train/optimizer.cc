// AdamW, the one-cycle schedule, clipping and LoRA initialisation.
#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "base/random.h"

namespace bora::train {
namespace {

// Calls visit(a, b) on the i-th matrices of two adapters of the same layout.
template <typename Visit>
void Zip(model::LoraAdapter& first, const model::LoraAdapter& second, Visit&& visit) {
  std::vector<const model::LoraMatrix*> others;
  const_cast<model::LoraAdapter&>(second).ForEachMatrix(
      [&](model::LoraMatrix& m, const std::string&) { others.push_back(&m); });
  size_t index = 0;
  first.ForEachMatrix(
      [&](model::LoraMatrix& m, const std::string&) { visit(m, *others.at(index++)); });
}

void AdamWVector(std::vector<float>& p, const std::vector<float>& g, std::vector<float>& m,
                 std::vector<float>& v, const AdamWSettings& s, double lr, double correction1,
                 double correction2) {
  const float b1 = static_cast<float>(s.beta1), b2 = static_cast<float>(s.beta2);
  const float decay = static_cast<float>(1.0 - lr * s.weight_decay);
  const double step_size = lr / correction1;
  const double root_correction2 = std::sqrt(correction2);
  for (size_t i = 0; i < p.size(); ++i) {
    p[i] *= decay;
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    const double denominator = std::sqrt(static_cast<double>(v[i])) / root_correction2 + s.eps;
    p[i] -= static_cast<float>(step_size * m[i] / denominator);
  }
}

}  // namespace

AdamWState NewAdamWState(const model::LoraAdapter& params) {
  AdamWState state{params, params, 0};
  ZeroLoraAdapter(state.m);
  ZeroLoraAdapter(state.v);
  return state;
}

void AdamWUpdate(model::LoraAdapter& params, const model::LoraAdapter& grads, AdamWState& state,
                 const AdamWSettings& settings, double lr) {
  ++state.step;
  const double correction1 = 1.0 - std::pow(settings.beta1, static_cast<double>(state.step));
  const double correction2 = 1.0 - std::pow(settings.beta2, static_cast<double>(state.step));
  std::vector<model::LoraMatrix*> ms, vs;
  state.m.ForEachMatrix([&](model::LoraMatrix& m, const std::string&) { ms.push_back(&m); });
  state.v.ForEachMatrix([&](model::LoraMatrix& m, const std::string&) { vs.push_back(&m); });
  size_t index = 0;
  Zip(params, grads, [&](model::LoraMatrix& p, const model::LoraMatrix& g) {
    AdamWVector(p.a, g.a, ms[index]->a, vs[index]->a, settings, lr, correction1, correction2);
    AdamWVector(p.b, g.b, ms[index]->b, vs[index]->b, settings, lr, correction1, correction2);
    ++index;
  });
}

double OneCycleLearningRate(double lr, int64_t step, int64_t total, double warmup_fraction) {
  const double initial = lr / 25.0, final_lr = initial / 1e4;
  auto anneal = [](double start, double end, double pct) {
    return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
  };
  const double end_warmup = warmup_fraction * static_cast<double>(total) - 1.0;
  const double end_all = static_cast<double>(total) - 1.0;
  const double s = static_cast<double>(step);
  if (end_warmup > 0 && s <= end_warmup) return anneal(initial, lr, s / end_warmup);
  const double start = std::max(end_warmup, 0.0);
  if (end_all <= start) return lr;
  return anneal(lr, final_lr, std::clamp((s - start) / (end_all - start), 0.0, 1.0));
}

double ClipGradientNorm(model::LoraAdapter& grads, double max_norm) {
  double squares = 0.0;
  grads.ForEachMatrix([&](model::LoraMatrix& m, const std::string&) {
    for (float g : m.a) squares += static_cast<double>(g) * g;
    for (float g : m.b) squares += static_cast<double>(g) * g;
  });
  const double norm = std::sqrt(squares);
  if (max_norm > 0 && norm > max_norm) {
    const float factor = static_cast<float>(max_norm / (norm + 1e-6));
    grads.ForEachMatrix([&](model::LoraMatrix& m, const std::string&) {
      for (float& g : m.a) g *= factor;
      for (float& g : m.b) g *= factor;
    });
  }
  return norm;
}

void InitLoraAdapter(model::LoraAdapter& adapter, uint64_t seed) {
  Xoshiro256 rng(seed);
  adapter.ForEachMatrix([&](model::LoraMatrix& m, const std::string&) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(m.in));
    for (float& value : m.a) value = static_cast<float>((2.0 * rng.Uniform() - 1.0) * bound);
    std::fill(m.b.begin(), m.b.end(), 0.0f);
  });
}

void ZeroLoraAdapter(model::LoraAdapter& adapter) {
  adapter.ForEachMatrix([](model::LoraMatrix& m, const std::string&) {
    std::fill(m.a.begin(), m.a.end(), 0.0f);
    std::fill(m.b.begin(), m.b.end(), 0.0f);
  });
}

}  // namespace bora::train
