// The full training state saved beside each checkpoint so a resumed run continues exactly:
// f32 LoRA parameters and AdamW moments (training_state.safetensors) and the step, data
// position and run settings (training_state.json).
#pragma once

#include <cstdint>
#include <string>

#include "model/lora_adapter.h"
#include "tokenizer/python_json.h"
#include "train/optimizer.h"

namespace bora::train {

struct TrainingState {
  model::LoraAdapter params;  // f32, exactly as trained
  AdamWState optimizer;
  int64_t step = 0;                 // optimizer steps done
  tokenizer::OrderedJson data;      // the training stream's SaveState()
  tokenizer::OrderedJson settings;  // what must match to resume (model, rank, seq_len, ...)
};

// Writes `dir`/training_state.safetensors and `dir`/training_state.json (each complete or
// absent). Throws IoError.
void SaveTrainingState(const TrainingState& state, const std::string& dir);

// Reads them back into `state`, whose params must already have the adapter's layout (shapes
// are checked against it) and whose `settings` are the current run's: a state saved with other
// settings is an InvalidArgument naming them (checked before any tensor is read). Throws
// IoError / FormatError naming the file.
void LoadTrainingState(const std::string& dir, TrainingState& state);

// Whether `dir` holds a complete training state.
bool HasTrainingState(const std::string& dir);

}  // namespace bora::train
