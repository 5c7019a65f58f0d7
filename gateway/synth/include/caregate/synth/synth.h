#pragma once
// Deterministic synthetic records for tests and benchmarks: realistic, awkward names
// and addresses, missing values, valid NHS numbers; the same seed gives the same bytes.
#include <cstdint>
#include <cstdio>
#include <string>

#include "caregate/engine/engine.h"
#include "caregate/model/care_record.h"

namespace caregate::synth {

struct SynthOptions {
  std::uint64_t records = 100;
  std::uint64_t seed = 1;
  std::string format = "cis";      // cis | systmone
  std::uint64_t invalid_every = 0;  // every Nth record is made invalid (0: none)
};

class Generator {
 public:
  Generator(std::uint64_t seed, std::string format) : seed_(seed), format_(std::move(format)) {}
  // Record number i (0-based) is a pure function of (seed, format, i).
  model::CareRecord Make(std::uint64_t i) const;

 private:
  std::uint64_t seed_;
  std::string format_;
};

// A valid NHS number derived from n (Modulus 11), in the 99 range.
std::string SyntheticNhsNumber(std::uint64_t n);

// Writes the whole synthetic stream (a CIS NDJSON extract or a SystmOne batch).
void WriteSynth(const engine::Engine& engine, const SynthOptions& options, std::FILE* out);

}  // namespace caregate::synth
